//! `event-consumer`: the sample destination service. Reads the processor's output topics,
//! decodes `ProcessorToConsumer` records with writer schemas from the registry and prints
//! them; with `--verify MANIFEST` it checks a producer manifest end to end.
//!
//! Exit status: 0 ok, 1 verification failed (ids missing or misrouted), 2 bad flags, 3 the
//! broker, a topic, the registry or a file is unusable.

mod cli;
mod decode;
mod feed;
mod manifest;
mod print;
mod run;
mod verify;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn main() -> ExitCode {
    let settings = match cli::parse_args() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            return ExitCode::from(2);
        }
    };
    init_logging(&settings.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(3);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let outcome = runtime.block_on(async {
        tokio::spawn(stop_on_ctrl_c(Arc::clone(&stop)));
        run::run(&settings, &stop).await
    });
    match outcome {
        Ok(summary) => {
            run::print_summary(&settings, &summary);
            if summary.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(3)
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level.to_lowercase()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// First Ctrl-C: stop reading and summarize. Second: exit at once.
async fn stop_on_ctrl_c(stop: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("stopping: finishing the current batch (Ctrl-C again to exit at once)");
    stop.store(true, Ordering::Relaxed);
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

/// The error and its causes on one line, skipping causes whose text the line already holds
/// (our error types repeat their source's message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_causes_already_in_the_message_are_not_repeated() {
        let inner = anyhow::anyhow!("topic `x` does not exist");
        let outer = inner
            .context("cannot read topic `x`: topic `x` does not exist")
            .context("reading failed");
        assert_eq!(
            one_line(&outer),
            "reading failed: cannot read topic `x`: topic `x` does not exist"
        );
    }
}
