#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod api;
mod compatibility;
mod error;
mod http_error;
mod persist;
mod store;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use api::{CONTENT_TYPE, router};
pub use error::{DataFileAction, RegistryError};
pub use store::RegistryState;

/// How long [`RunningRegistry::shutdown`] lets open requests finish before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where to listen and where (if anywhere) to keep state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Address to bind; port 0 picks a free port (see [`RunningRegistry::local_addr`]).
    pub listen: SocketAddr,
    /// JSON file holding all state across restarts; `None` keeps state in memory only.
    pub data_file: Option<PathBuf>,
}

impl RegistryConfig {
    /// In memory, on a free loopback port: what a test usually wants.
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_file: None,
        }
    }
}

/// A registry serving on the current tokio runtime. Dropping it stops the server too.
#[derive(Debug)]
pub struct RunningRegistry {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Loads state, binds `config.listen`, and serves the registry API in a task spawned on the
/// current tokio runtime. Returns once the socket is listening, so requests can be sent at once.
pub async fn start(config: RegistryConfig) -> Result<RunningRegistry, RegistryError> {
    let state = match config.data_file {
        // Reading and possibly creating the file is blocking I/O.
        Some(path) => {
            let opened = path.clone();
            tokio::task::spawn_blocking(move || RegistryState::with_data_file(opened))
                .await
                .map_err(|error| RegistryError::DataFile {
                    path,
                    action: DataFileAction::Read,
                    source: std::io::Error::other(error),
                })??
        }
        None => RegistryState::in_memory(),
    };
    let bind_error = |source| RegistryError::Bind {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;

    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state);
    let server = tokio::spawn(async move {
        // A dropped sender counts as a stop request too: that is how dropping the handle stops it.
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "schema registry server stopped with an error");
        }
    });
    Ok(RunningRegistry {
        local_addr,
        stop: Some(stop),
        server: Some(server),
    })
}

impl RunningRegistry {
    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL for clients, e.g. `http://127.0.0.1:8081`. A wildcard listen address is given as
    /// loopback, since a wildcard is not an address one can connect to.
    pub fn url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// Stops accepting connections, lets open requests finish (for a few seconds at most) and
    /// waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "schema registry requests still open after the grace period; cutting them off"
            );
            server.abort();
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
