//! Binaries under test as child processes, with their output kept in files.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::unique_name;

/// A fresh directory under the system temp dir, `<prefix>-<unique>`.
///
/// # Panics
/// When the directory cannot be created.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// How a binary run by [`run_to_completion`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit status, `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Finished {
    /// Asserts the exit status, showing both outputs when it differs.
    ///
    /// # Panics
    /// When the process did not exit with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `program` with `args` to completion, stdout and stderr going to files (pipes would fill
/// up and block a chatty child), and kills it after `patience`.
///
/// # Panics
/// When the program does not start or does not finish within `patience`.
pub fn run_to_completion<S: AsRef<OsStr> + Debug>(
    program: impl AsRef<Path>,
    args: &[S],
    patience: Duration,
) -> Finished {
    let program = program.as_ref();
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let dir = scratch_dir(&format!("{name}-test"));
    let (stdout_path, stderr_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::from(
            std::fs::File::create(&stdout_path).expect("stdout file"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(&stderr_path).expect("stderr file"),
        ))
        .spawn()
        .unwrap_or_else(|error| panic!("{name} does not start: {error}"));
    let deadline = Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} {args:?} did not finish within {patience:?}; stderr: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Finished {
        code: status.code(),
        stdout: std::fs::read_to_string(stdout_path).expect("stdout"),
        stderr: std::fs::read_to_string(stderr_path).expect("stderr"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_and_both_outputs_are_captured() {
        let finished = run_to_completion(
            "sh",
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(30),
        );
        assert_eq!(
            finished,
            Finished {
                code: Some(3),
                stdout: "out\n".to_owned(),
                stderr: "err\n".to_owned(),
            }
        );
        finished.assert_code(3);
    }

    #[test]
    #[should_panic(expected = "did not finish within 200ms")]
    fn a_process_that_outlives_its_patience_is_killed_and_fails_the_test() {
        run_to_completion("sleep", &["30"], Duration::from_millis(200));
    }

    #[test]
    #[should_panic(expected = "stderr: err")]
    fn unexpected_exit_status_shows_the_output() {
        run_to_completion(
            "sh",
            &["-c", "echo err >&2; exit 1"],
            Duration::from_secs(30),
        )
        .assert_code(0);
    }

    #[test]
    fn scratch_dirs_are_distinct_and_exist() {
        let (first, second) = (scratch_dir("scratch"), scratch_dir("scratch"));
        assert_ne!(first, second);
        assert!(first.is_dir() && second.is_dir());
    }
}
