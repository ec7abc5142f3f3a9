//! Small helpers shared by the adapters.

use ports::AdapterError;

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

/// The headers of a consumed message, in order, duplicates kept; a null value reads as empty.
/// No allocation for a message without headers.
///
/// rdkafka's binding panics on a header name that is not UTF-8 (which the Kafka protocol
/// forbids, but a non-Java producer can write); such a header cannot be read without unsafe
/// code, so it is left out, counted in the second value, and the record goes on.
pub(crate) fn copy_headers(
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> (Vec<(String, Vec<u8>)>, usize) {
    use rdkafka::message::{Headers, Message};
    let Some(headers) = message.headers() else {
        return (Vec::new(), 0);
    };
    let count = headers.count();
    let mut copied = Vec::with_capacity(count);
    let mut unreadable = 0;
    for index in 0..count {
        let header = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            headers.try_get(index).map(|header| {
                (
                    header.key.to_owned(),
                    header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                )
            })
        }));
        match header {
            Ok(Some(header)) => copied.push(header),
            Ok(None) => {}
            Err(_) => unreadable += 1,
        }
    }
    (copied, unreadable)
}
