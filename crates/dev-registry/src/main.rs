//! `dev-registry`: the local Confluent-compatible schema registry as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dev_registry::{RegistryConfig, RegistryError, start};

/// A small Confluent-compatible schema registry for local development and tests.
/// Not for production: use Confluent Schema Registry, Karapace, Apicurio or Redpanda there.
#[derive(Debug, Parser)]
#[command(name = "dev-registry", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "DEV_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,

    /// JSON file keeping schemas, subjects and config across restarts (created if missing).
    /// Without it, state lives in memory only.
    #[arg(long, env = "DEV_REGISTRY_DATA_FILE")]
    data_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes would garble the log files the xtask keeps of this process.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let config = RegistryConfig {
        listen: args.listen,
        data_file: args.data_file,
    };
    let data_file = config.data_file.clone();
    let registry = start(config).await.map_err(|error| describe(&error))?;
    tracing::info!(
        url = %registry.url(),
        data_file = %data_file.as_deref().map_or("(none, in memory)".into(), |p| p.display().to_string()),
        "schema registry is listening"
    );
    let signal = stop_signal()
        .await
        .map_err(|error| format!("cannot watch for stop signals: {error}"))?;
    tracing::info!(signal, "stopping schema registry");
    registry.shutdown().await;
    Ok(())
}

/// The library's message, plus the flag to change where the port is concerned.
fn describe(error: &RegistryError) -> String {
    match error {
        RegistryError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
            format!(
                "cannot listen on {addr}: address in use \
                 (is another registry running? pick another port with --listen)"
            )
        }
        RegistryError::Bind { .. } => format!("{error} (change it with --listen)"),
        other => other.to_string(),
    }
}

#[cfg(unix)]
async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

#[cfg(not(unix))]
async fn stop_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await?;
    Ok("Ctrl-C")
}
