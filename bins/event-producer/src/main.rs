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

fn main() -> ExitCode {
    cli_support::run_tool(
        cli::parse_args,
        |settings| &settings.log_level,
        "stopping: waiting for delivery reports of the records sent (Ctrl-C again to exit at once)",
        async |settings, stop| run::run(settings, &stop).await,
        |_, summary| {
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
        },
    )
}
