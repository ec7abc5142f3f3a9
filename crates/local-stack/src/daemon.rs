//! Background processes: started detached in their own process group, remembered by pid file,
//! stopped (or killed) by pid, so a later command can stop what an earlier one started.

use anyhow::{Context, Result, bail};
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Daemons this process started: stopping one of them also reaps it, so no zombie outlives the
/// process that started it (its callers' shells would otherwise inherit and reap them).
static STARTED: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// A background process known by the pid file it left behind in its directory.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Short name, used for the pid and log file names and in messages.
    pub name: &'static str,
    /// `<dir>/<name>.pid`.
    pub pid_file: PathBuf,
    /// `<dir>/<name>.log`, appended to by every start.
    pub log_file: PathBuf,
}

impl Daemon {
    /// A daemon whose pid and log files live in `dir`.
    pub fn new(name: &'static str, dir: &Path) -> Self {
        Self {
            name,
            pid_file: dir.join(format!("{name}.pid")),
            log_file: dir.join(format!("{name}.log")),
        }
    }

    /// Starts `command` in its own process group (so `stop` reaches its children too), with
    /// output appended to the log file, and records its pid.
    ///
    /// # Errors
    /// When the log or pid file cannot be written or the program does not start.
    pub fn spawn(&self, command: &mut Command) -> Result<u32> {
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
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_alive(pid).then_some(pid)
    }

    /// Stops the process group with SIGTERM, then SIGKILL after `grace`. Returns whether anything
    /// was running.
    ///
    /// # Errors
    /// When the process survives SIGKILL.
    pub fn stop(&self, grace: Duration) -> Result<bool> {
        let Some(pid) = self.running_pid() else {
            let _ = fs::remove_file(&self.pid_file);
            return Ok(false);
        };
        signal_group(pid, "TERM");
        if !wait_for_exit(pid, grace) {
            signal_group(pid, "KILL");
            wait_for_exit(pid, Duration::from_secs(5));
        }
        self.forget(pid)
    }

    /// SIGKILLs the process group at once, as a crash would. Returns whether anything was running.
    ///
    /// # Errors
    /// When the process survives SIGKILL.
    pub fn kill(&self) -> Result<bool> {
        let Some(pid) = self.running_pid() else {
            return Ok(false);
        };
        signal_group(pid, "KILL");
        wait_for_exit(pid, Duration::from_secs(10));
        self.forget(pid)
    }

    fn forget(&self, pid: u32) -> Result<bool> {
        if is_alive(pid) {
            bail!("{} (pid {pid}) did not stop", self.name);
        }
        let _ = fs::remove_file(&self.pid_file);
        Ok(true)
    }

    /// The last lines of the log, to explain a failed start.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
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
        std::thread::sleep(Duration::from_millis(20));
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
///
/// # Errors
/// When the port is taken; the message names `env_var`, which moves it.
pub fn ensure_port_free(port: u16, what: &str, env_var: &str) -> Result<()> {
    if TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} for the {what} is in use by another process; stop it or pick another port with {env_var}=<port>"
        );
    }
    Ok(())
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// A loopback port nothing listens on right now.
///
/// # Errors
/// When the system gives no port.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `probe` until it returns true, or fails after `timeout` (or when the daemon died) with
/// the daemon's log tail.
///
/// # Errors
/// When the daemon exits or `timeout` passes first.
pub fn wait_until(
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
