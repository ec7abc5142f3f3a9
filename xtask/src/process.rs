//! Background processes the stack owns: started detached, remembered by pid file, stopped by pid.

use anyhow::{Context, Result, bail};
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Daemons this xtask process started: stopping one of them also reaps it, so no zombie outlives
/// `cargo xtask test` (its callers' shells would otherwise inherit and reap them).
static STARTED: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// A process started by `stack up`, known by the pid file it left behind.
#[derive(Debug, Clone)]
pub(crate) struct Daemon {
    pub(crate) name: &'static str,
    pub(crate) pid_file: PathBuf,
    pub(crate) log_file: PathBuf,
}

impl Daemon {
    pub(crate) fn new(name: &'static str, dir: &Path) -> Self {
        Self {
            name,
            pid_file: dir.join(format!("{name}.pid")),
            log_file: dir.join(format!("{name}.log")),
        }
    }

    /// Starts `command` in its own process group (so `down` can stop it with its children),
    /// with output appended to the log file.
    pub(crate) fn spawn(&self, command: &mut Command) -> Result<u32> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("cannot open log file {}", self.log_file.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}: {:?}", self.name, command.get_program()))?;
        let pid = child.id();
        STARTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(child);
        fs::write(&self.pid_file, pid.to_string())
            .with_context(|| format!("cannot write {}", self.pid_file.display()))?;
        Ok(pid)
    }

    /// The pid from the pid file, when that process is still alive.
    pub(crate) fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_alive(pid).then_some(pid)
    }

    /// Stops the process group with SIGTERM, then SIGKILL after a grace period. Returns whether
    /// anything was running.
    pub(crate) fn stop(&self) -> Result<bool> {
        let Some(pid) = self.running_pid() else {
            let _ = fs::remove_file(&self.pid_file);
            return Ok(false);
        };
        signal_group(pid, "TERM");
        if !wait_for_exit(pid, Duration::from_secs(10)) {
            signal_group(pid, "KILL");
            wait_for_exit(pid, Duration::from_secs(5));
        }
        if is_alive(pid) {
            bail!("{} (pid {pid}) did not stop", self.name);
        }
        let _ = fs::remove_file(&self.pid_file);
        Ok(true)
    }

    /// The last lines of the log, to explain a failed start.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Waits until `pid` exited, reaping it when this process started it.
fn wait_for_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        reap(pid);
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn reap(pid: u32) {
    let mut started = STARTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    started.retain_mut(|child| child.id() != pid || child.try_wait().ok().flatten().is_none());
}

fn is_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter is Z.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn signal_group(pid: u32, signal: &str) {
    // `kill -s SIG -- -PGID` reaches the whole group; the daemons lead their own group.
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// Fails with a clear message when something else listens on `port`.
pub(crate) fn ensure_port_free(port: u16, what: &str, env_var: &str) -> Result<()> {
    if TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} for the {what} is in use by another process; stop it or pick another port with {env_var}=<port>"
        );
    }
    Ok(())
}

pub(crate) fn port_answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Polls `probe` until it returns true, or fails after `timeout` with the daemon's log tail.
pub(crate) fn wait_until(
    daemon: &Daemon,
    timeout: Duration,
    mut probe: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if probe() {
            return Ok(());
        }
        if daemon.running_pid().is_none() {
            bail!(
                "{} exited during start-up; last log lines ({}):\n{}",
                daemon.name,
                daemon.log_file.display(),
                daemon.log_tail()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not become ready within {timeout:?}; last log lines ({}):\n{}",
                daemon.name,
                daemon.log_file.display(),
                daemon.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command to completion, failing with its name when it fails.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", display_command(command));
    }
    Ok(())
}

pub(crate) fn display_command(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
