//! `event-producer`: the sample tenant. Publishes `ProducerToProcessor` events (Confluent-framed
//! Avro) for one or more tenants to the processor's input topic and reports what the broker
//! acknowledged.
//!
//! Exit status: 0 every record acknowledged, 1 some not delivered (or interrupted), 2 bad
//! flags, 3 the broker, topic, registry or manifest file is unusable.

mod cli;
mod events;
mod manifest;
mod pacing;
mod run;

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
        "stopping: waiting for delivery reports of the records sent (Ctrl-C again to exit at once)",
        async |stop| run::run(&settings, &stop).await,
    ) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
    match outcome {
        Ok(summary) => {
            println!("{summary}");
            if summary.all_delivered() {
                return ExitCode::SUCCESS;
            }
            if let Some(first) = &summary.first_failure {
                eprintln!(
                    "error: {} records were not delivered; first failure: {first}",
                    summary.failed
                );
            }
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(3)
        }
    }
}
