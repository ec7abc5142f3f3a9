//! Version of the binary: the crate version and the git commit it was built from (`build.rs`;
//! `unknown` outside a git checkout unless `EP_GIT_COMMIT` was set at build time).

/// The git commit (short hash), or `unknown`.
pub(crate) const GIT_COMMIT: &str = env!("EP_GIT_COMMIT");

/// What `--version` prints after the name: `0.0.0 (commit e15c0ad)`.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("EP_GIT_COMMIT"),
    ")"
);
