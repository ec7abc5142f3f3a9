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

fn main() -> ExitCode {
    cli_support::run_tool(
        cli::parse_args,
        |settings| &settings.log_level,
        "stopping: finishing the current batch (Ctrl-C again to exit at once)",
        async |settings, stop| run::run(settings, &stop).await,
        |settings, summary| {
            run::print_summary(settings, &summary);
            match summary.ok {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            }
        },
    )
}
