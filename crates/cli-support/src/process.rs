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

/// The log levels of Python's `logging` (the prototype's `-log_level`), any case, and the
/// tracing level each one means.
const PYTHON_LEVELS: [(&str, &str); 7] = [
    ("DEBUG", "debug"),
    ("INFO", "info"),
    ("WARNING", "warn"),
    ("WARN", "warn"),
    ("ERROR", "error"),
    ("CRITICAL", "error"),
    ("FATAL", "error"),
];

/// The tracing filter a log-level setting stands for: a Python level name (`DEBUG`, `INFO`,
/// `WARNING`/`WARN`, `ERROR`, `CRITICAL`/`FATAL`; any case; the last two mean `error`), else the
/// value itself (lower-cased) when it is a valid filter (`trace`, `off`,
/// `info,librdkafka=warn`). Anything else is an error that says what is accepted.
pub fn log_filter(level: &str) -> anyhow::Result<String> {
    let trimmed = level.trim();
    if let Some((_, mapped)) = PYTHON_LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
    {
        return Ok((*mapped).to_owned());
    }
    let directives = trimmed.to_lowercase();
    if directives.is_empty() {
        anyhow::bail!(
            "empty log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL (any case), or a \
             filter such as `info,librdkafka=warn`"
        );
    }
    match tracing_subscriber::EnvFilter::try_new(&directives) {
        Ok(_) => Ok(directives),
        Err(error) => anyhow::bail!(
            "`{level}` is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL (any \
             case), or a filter such as `info,librdkafka=warn` ({error})"
        ),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` when it is set and valid, else by `level` (see
/// [`log_filter`]). Fails, before installing anything, when `level` is neither a level nor a
/// filter (a configuration error: the binary exits 2), even when `RUST_LOG` would win.
pub fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let directives = log_filter(level)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&directives))?;
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
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

/// Runs `work` to completion on a fresh runtime (see [`start_runtime`]), handing it a flag that
/// tells it to wrap up. The first Ctrl-C prints `ctrl_c_message` (what the binary finishes before
/// it stops) and sets the flag; a second one exits at once with status 130.
pub fn block_on_stoppable<T>(
    on_runtime_failure: ExitCode,
    ctrl_c_message: &'static str,
    work: impl AsyncFnOnce(Arc<AtomicBool>) -> T,
) -> Result<T, ExitCode> {
    let runtime = start_runtime(on_runtime_failure)?;
    let stop = Arc::new(AtomicBool::new(false));
    Ok(runtime.block_on(async {
        tokio::spawn(stop_on_ctrl_c(Arc::clone(&stop), ctrl_c_message));
        work(stop).await
    }))
}

/// Exit status of a sample tool whose flags are wrong.
pub const EXIT_BAD_FLAGS: u8 = 2;
/// Exit status of a sample tool that found the broker, a topic, the registry or a file unusable.
pub const EXIT_UNUSABLE: u8 = 3;

/// The `main` of the sample tools (`event-producer`, `event-consumer`): parse the flags (an error
/// exits [`EXIT_BAD_FLAGS`]), start logging at the tool's level, run `work` on a fresh runtime
/// with Ctrl-C asking it to wrap up (see [`block_on_stoppable`]), then let `report` turn what it
/// returned into the exit status. An error of `work` is printed on one line and exits
/// [`EXIT_UNUSABLE`].
pub fn run_tool<S, T>(
    parse: impl FnOnce() -> anyhow::Result<S>,
    log_level: fn(&S) -> &str,
    ctrl_c_message: &'static str,
    work: impl AsyncFnOnce(&S, Arc<AtomicBool>) -> anyhow::Result<T>,
    report: impl FnOnce(&S, T) -> ExitCode,
) -> ExitCode {
    let settings = match parse() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", crate::one_line(&error));
            return ExitCode::from(EXIT_BAD_FLAGS);
        }
    };
    if let Err(error) = init_logging(log_level(&settings), LogFormat::Plain) {
        eprintln!("error: --log-level: {}", crate::one_line(&error));
        return ExitCode::from(EXIT_BAD_FLAGS);
    }
    let outcome = match block_on_stoppable(
        ExitCode::from(EXIT_UNUSABLE),
        ctrl_c_message,
        async |stop| work(&settings, stop).await,
    ) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
    match outcome {
        Ok(done) => report(&settings, done),
        Err(error) => {
            eprintln!("error: {}", crate::one_line(&error));
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

async fn stop_on_ctrl_c(stop: Arc<AtomicBool>, message: &'static str) {
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
    fn python_level_names_map_to_tracing_levels_in_any_case() {
        for (level, filter) in [
            ("DEBUG", "debug"),
            ("INFO", "info"),
            ("WARNING", "warn"),
            ("warning", "warn"),
            ("Warning", "warn"),
            ("WARN", "warn"),
            ("ERROR", "error"),
            ("CRITICAL", "error"),
            ("critical", "error"),
            ("FATAL", "error"),
            (" info ", "info"),
        ] {
            assert_eq!(log_filter(level).expect(level), filter, "{level}");
        }
    }

    #[test]
    fn valid_tracing_filters_keep_working() {
        for (level, filter) in [
            ("trace", "trace"),
            ("off", "off"),
            ("info", "info"),
            ("TRACE", "trace"),
            (
                "event_processor=debug,librdkafka=warn",
                "event_processor=debug,librdkafka=warn",
            ),
            ("info,pipeline=DEBUG", "info,pipeline=debug"),
        ] {
            assert_eq!(log_filter(level).expect(level), filter, "{level}");
        }
    }

    #[test]
    fn an_invalid_level_is_an_error_that_says_what_is_accepted() {
        for level in ["", "  ", "pipeline=loud", "info,x=warning", "=="] {
            let error = log_filter(level).expect_err(level).to_string();
            assert!(error.contains("WARNING"), "{level}: {error}");
        }
        let error = log_filter("pipeline=loud")
            .expect_err("invalid")
            .to_string();
        assert!(error.contains("`pipeline=loud`"), "{error}");
    }

    #[test]
    fn stoppable_work_runs_to_completion_with_the_flag_down() {
        let outcome = block_on_stoppable(ExitCode::from(3), "unused", async |stop| {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            stop.load(Ordering::Relaxed)
        });
        assert_eq!(outcome, Ok(false));
    }

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
