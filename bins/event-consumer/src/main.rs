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

use std::process::ExitCode;

use cli_support::{LogFormat, one_line};

fn main() -> ExitCode {
    let settings = match cli::parse_args() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            return ExitCode::from(2);
        }
    };
    if let Err(error) = cli_support::init_logging(&settings.log_level, LogFormat::Plain) {
        eprintln!("error: --log-level: {}", one_line(&error));
        return ExitCode::from(2);
    }
    let outcome = match cli_support::block_on_stoppable(
        ExitCode::from(3),
        "stopping: finishing the current batch (Ctrl-C again to exit at once)",
        async |stop| run::run(&settings, &stop).await,
    ) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
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
