//! dev-registry
