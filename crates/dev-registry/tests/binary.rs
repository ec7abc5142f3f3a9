//! The `dev-registry` binary as the xtask runs it: flags, env, startup errors and signals.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Client, RECORD_V1, scratch_dir};
use dev_registry::{RegistryConfig, RegistryError, start};

const BINARY: &str = env!("CARGO_BIN_EXE_dev-registry");

/// Kills the child if a test fails before it ended, so no registry outlives its test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Running {
    fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("can poll child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dev-registry did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn registry_command() -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_remove("DEV_REGISTRY_LISTEN")
        .env_remove("DEV_REGISTRY_DATA_FILE")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs the binary to completion and returns its exit status and stderr.
fn run_to_exit(mut command: Command) -> (ExitStatus, String) {
    let mut child = Running(command.spawn().expect("dev-registry starts"));
    let stderr = child.0.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = child.wait_for_exit(Duration::from_secs(20));
    (status, reader.join().expect("stderr reader finishes"))
}

#[tokio::test]
async fn port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a port to occupy");
    let addr = taken.local_addr().expect("local addr");

    let mut command = registry_command();
    command.args(["--listen", &addr.to_string()]);
    let (status, stderr) = run_to_exit(command);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(
            format!(
                "error: cannot listen on {addr}: address in use (is another registry running? \
                 pick another port with --listen)"
            )
            .as_str()
        ),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The library reports the same as a structured error.
    let error = start(RegistryConfig {
        listen: addr,
        data_file: None,
    })
    .await
    .expect_err("port is taken");
    assert!(
        matches!(&error, RegistryError::Bind { addr: a, source }
            if *a == addr && source.kind() == std::io::ErrorKind::AddrInUse),
        "{error:?}"
    );
}

#[test]
fn corrupt_data_file_stops_the_binary_with_the_file_named() {
    let file = scratch_dir("bin-corrupt").join("registry.json");
    std::fs::write(&file, "not json at all").expect("write corrupt file");

    let mut command = registry_command();
    command
        .args(["--listen", "127.0.0.1:0", "--data-file"])
        .arg(&file);
    let (status, stderr) = run_to_exit(command);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: registry data file "), "{stderr}");
    assert!(last.contains(&file.display().to_string()), "{stderr}");
}

#[tokio::test]
async fn binary_takes_its_settings_from_env_and_stops_cleanly_on_sigterm() {
    let file = scratch_dir("bin-env").join("registry.json");
    let mut command = registry_command();
    command
        .env("DEV_REGISTRY_LISTEN", "127.0.0.1:0")
        .env("DEV_REGISTRY_DATA_FILE", &file);
    let mut child = Running(command.spawn().expect("dev-registry starts"));
    let url = listening_url(&mut child, Duration::from_secs(20));

    let client = Client::new(url);
    assert_eq!(client.get("/").await.status, reqwest::StatusCode::OK);
    client.register_ok("things-value", RECORD_V1).await;

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "exit after SIGTERM: {status:?}");

    let saved = std::fs::read_to_string(&file).expect("data file from env was written");
    assert!(saved.contains("things-value"), "{saved}");
}

/// Reads the startup log until the "listening" line and returns the URL it names.
fn listening_url(child: &mut Running, limit: Duration) -> String {
    let stderr = child.0.stderr.take().expect("stderr is piped");
    let (lines, received) = mpsc::channel();
    // Keeps draining stderr after the URL is found so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = received.recv_timeout(left) else {
            break;
        };
        if line.contains("listening")
            && let Some(url) = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("url="))
        {
            let addr: SocketAddr = url
                .trim_start_matches("http://")
                .parse()
                .unwrap_or_else(|_| panic!("url field is an address: {line}"));
            assert!(addr.ip().is_loopback(), "{line}");
            return url.to_owned();
        }
        seen.push(line);
    }
    panic!("no listening line within {limit:?}; stderr so far: {seen:#?}");
}
