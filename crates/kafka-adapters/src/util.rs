//! Small helpers shared by the adapters.

use crate::error::AdapterError;

/// Runs a blocking librdkafka call on tokio's blocking pool.
pub(crate) async fn run_blocking<T, F>(operation: &'static str, call: F) -> Result<T, AdapterError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AdapterError> + Send + 'static,
{
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|error| AdapterError::Task {
            operation,
            reason: error.to_string(),
        })?
}
