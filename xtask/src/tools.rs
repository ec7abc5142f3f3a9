//! The programs the stack runs: tansu (installed once per machine) and our dev registry (built here).

use crate::process;
use crate::workspace_root;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

const TANSU_VERSION: &str = "0.6.0";
/// `dynostore` gives `memory://` storage and `libsql` durable `sqlite://`; the default features have none.
const TANSU_FEATURES: &str = "dynostore,libsql";

/// The tansu binary: `TANSU_BIN`, or the one installed under the tools directory, installing it
/// on first use (about 20 minutes on 2 cores, once per machine).
pub(crate) fn tansu() -> Result<PathBuf> {
    if let Ok(explicit) = std::env::var("TANSU_BIN") {
        let path = PathBuf::from(&explicit);
        if !path.is_file() {
            bail!(
                "TANSU_BIN={explicit} is not a file; unset it to let `cargo xtask stack up` install tansu"
            );
        }
        return Ok(path);
    }
    let root = tools_dir()?.join(format!("tansu-{TANSU_VERSION}"));
    let binary = root.join("bin").join("tansu");
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!(
        "installing tansu {TANSU_VERSION} into {} (once per machine; about 20 minutes on 2 cores)",
        root.display()
    );
    let mut install = Command::new(cargo());
    install.args([
        "install",
        "tansu",
        "--version",
        TANSU_VERSION,
        "--locked",
        "--features",
        TANSU_FEATURES,
        "--root",
    ]);
    install.arg(&root);
    process::run(&mut install).context(
        "installing the tansu broker failed (see cargo's output above); \
         set TANSU_BIN to an existing tansu binary to skip the install",
    )?;
    if !binary.is_file() {
        bail!("cargo install finished but {} is missing", binary.display());
    }
    Ok(binary)
}

/// Builds the dev registry and returns its binary.
pub(crate) fn dev_registry() -> Result<PathBuf> {
    process::run(Command::new(cargo()).args(["build", "--quiet", "--package", "dev-registry"]))
        .context("building the dev registry failed")?;
    let binary = target_dir().join("debug").join("dev-registry");
    if !binary.is_file() {
        bail!("built the dev registry but {} is missing", binary.display());
    }
    Ok(binary)
}

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

fn tools_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("EP_TOOLS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("neither EP_TOOLS_DIR nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("event-processor"))
}
