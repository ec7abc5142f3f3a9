//! Cargo and the workspace's build outputs.

use crate::process;
use crate::workspace_root;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Builds workspace binaries with the given cargo profile and returns the directory holding them.
pub(crate) fn build_binaries(packages: &[&str], release: bool) -> Result<PathBuf> {
    let mut build = Command::new(cargo());
    build.args(["build", "--quiet"]);
    if release {
        build.arg("--release");
    }
    for package in packages {
        build.args(["--package", package]);
    }
    process::run(&mut build).context("building the binaries failed")?;
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
