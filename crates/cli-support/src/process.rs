//! The process around a binary's work: logging, the async runtime, Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured only on a terminal.
    Plain,
    /// One JSON object per line, for collectors.
    Json,
}

/// Logs to stderr, filtered by `RUST_LOG` when set, else by `level` (a level or a filter such as
/// `event_consumer=debug`), else by `fallback` when `level` is not a valid filter.
pub fn init_logging(level: &str, fallback: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level.to_lowercase()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(fallback));
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The multi-thread runtime with every driver enabled. When it cannot start, says so on stderr
/// and gives back `on_failure`, the exit status the binary documents for it.
pub fn start_runtime(on_failure: ExitCode) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            on_failure
        })
}

/// First Ctrl-C: prints `message` (what the binary finishes before it stops) and sets `stop`.
/// Second Ctrl-C: exits at once with status 130.
pub async fn stop_on_ctrl_c(stop: Arc<AtomicBool>, message: &'static str) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("{message}");
    stop.store(true, Ordering::Relaxed);
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_runtime_runs_timers_and_io() {
        let runtime = start_runtime(ExitCode::from(3)).expect("runtime starts");
        let slept = runtime.block_on(async {
            let started = tokio::time::Instant::now();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("io driver enabled");
            started.elapsed()
        });
        assert!(slept >= std::time::Duration::from_millis(5), "{slept:?}");
    }
}
