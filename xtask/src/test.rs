//! `cargo xtask test`: everything CI checks, in the order that fails fastest.
//!
//! Integration tests run against a private stack on free ports (never the developer's stack), with
//! `EP_REQUIRE_STACK=1` so an integration test that cannot find the stack fails instead of skipping.
//! Last, a smoke run of `cargo xtask bench` (a few thousand events) checks that the bench works.

use crate::process::{self, display_command};
use crate::stack::Stack;
use crate::tools::cargo;
use anyhow::{Context, Result, bail};
use std::process::Command;

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let skip_lints = args.contains(&"--skip-lints");
    if let Some(unknown) = args.iter().find(|arg| **arg != "--skip-lints") {
        bail!("unknown flag `{unknown}`; usage: cargo xtask test [--skip-lints]");
    }
    if !skip_lints {
        step(Command::new(cargo()).args(["fmt", "--all", "--", "--check"]))?;
        step(Command::new(cargo()).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    let stack = Stack::private("test")?;
    let _stop_on_exit = StopOnDrop(stack.clone());
    stack
        .up()
        .context("starting the private test stack failed")?;
    let env = stack.env_vars();
    let mut tests = if nextest_available() {
        let mut command = Command::new(cargo());
        command.args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]);
        command
    } else {
        eprintln!("cargo-nextest not found; running the tests with cargo test");
        let mut command = Command::new(cargo());
        command.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
        command
    };
    step(tests.envs(env.clone()).env("EP_REQUIRE_STACK", "1"))?;
    step(
        Command::new(cargo())
            .args(["test", "--workspace", "--locked", "--doc"])
            .envs(env),
    )?;
    // The bench starts a stack of its own; this one is no longer needed.
    drop(_stop_on_exit);
    // Checks that `cargo xtask bench` works and writes its outputs (to target/bench/smoke); it
    // fails only when the bench itself breaks, never on the figures.
    eprintln!("==> cargo xtask bench --smoke");
    crate::bench::command(&["--smoke"]).context("the smoke bench failed")
}

fn step(command: &mut Command) -> Result<()> {
    eprintln!("==> {}", display_command(command));
    process::run(command)
}

fn nextest_available() -> bool {
    Command::new(cargo())
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

struct StopOnDrop(Stack);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Err(error) = self.0.down() {
            eprintln!("warning: stopping the test stack failed: {error:#}");
        }
    }
}
