//! Puts the git commit of the build into `EP_GIT_COMMIT` (shown by `--version` and the
//! `event_processor_build_info` metric).
//!
//! Order: the `EP_GIT_COMMIT` environment variable (a container build passes it as a build
//! argument, its context having no `.git`), else `git rev-parse --short HEAD`, else `unknown`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=EP_GIT_COMMIT");
    let commit = std::env::var("EP_GIT_COMMIT")
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=EP_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points at (a commit).
    // Only files that exist are named: a missing one would make cargo rerun this on every build.
    for name in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", name]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
}

/// The trimmed output of a successful `git` command, run in this package's directory.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn watch(path: Option<String>) {
    if let Some(path) = path.map(PathBuf::from)
        && path.is_file()
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
