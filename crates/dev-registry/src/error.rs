//! Errors of starting the registry. Errors of single HTTP requests are answered to the client in
//! Confluent's `{"error_code", "message"}` shape instead (see `http_error`).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The listen address could not be bound (typically: the port is taken).
    #[error("cannot listen on {addr}: {}", describe_bind_failure(source))]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },

    /// The data file could not be read, or could not be written when it was first created.
    #[error("cannot {action} registry data file {}: {source}", path.display())]
    DataFile {
        /// The data file.
        path: PathBuf,
        /// What was being done with it.
        action: DataFileAction,
        /// What the operating system said.
        source: io::Error,
    },

    /// The data file exists but does not hold registry state this version understands.
    #[error(
        "registry data file {} is corrupt: {detail}; \
         it only holds dev-registry state, so delete it (schemas will be registered anew) \
         or point --data-file elsewhere",
        path.display()
    )]
    CorruptDataFile {
        /// The data file.
        path: PathBuf,
        /// What is wrong with its content.
        detail: String,
    },
}

/// What the registry was doing with its data file when an I/O error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataFileAction {
    /// Loading state at start.
    Read,
    /// Writing state (at start when the file does not exist yet, and after each change).
    Write,
}

impl std::fmt::Display for DataFileAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
        })
    }
}

fn describe_bind_failure(source: &io::Error) -> String {
    match source.kind() {
        io::ErrorKind::AddrInUse => {
            "address in use (is another registry running? pick another port)".to_owned()
        }
        io::ErrorKind::AddrNotAvailable => {
            "address not available on this machine (use 127.0.0.1 or 0.0.0.0)".to_owned()
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges; pick a higher port)".to_owned()
        }
        _ => source.to_string(),
    }
}
