//! A Kafka broker of a test's own, for tests that crash and restart it: killing the shared test
//! broker would disturb every test running beside them.

use std::path::PathBuf;

use local_stack::{KafkaBroker, Tools, free_port};

use crate::scratch_dir;

/// A single-node Apache Kafka on free loopback ports in a scratch directory; stopped when
/// dropped. Its data survives [`OwnBroker::kill`] and [`OwnBroker::restart`].
#[derive(Debug)]
pub struct OwnBroker {
    broker: KafkaBroker,
    tools: Tools,
    dir: PathBuf,
}

impl OwnBroker {
    /// Fetches Kafka if this machine has not yet (`cargo xtask test` already did), then formats
    /// and starts a new broker.
    ///
    /// # Panics
    /// When Kafka cannot be fetched or the broker does not start.
    pub fn start(name: &str) -> Self {
        let tools =
            Tools::ensure().unwrap_or_else(|error| panic!("Kafka is not available: {error:#}"));
        let dir = scratch_dir(&format!("broker-{name}"));
        let broker = KafkaBroker::new(
            &dir,
            free_port().expect("free port"),
            free_port().expect("free port"),
        );
        broker
            .start(&tools)
            .unwrap_or_else(|error| panic!("the test's own broker did not start: {error:#}"));
        Self { broker, tools, dir }
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// Creates `(topic, partitions)` pairs with Kafka's own topic tool.
    ///
    /// # Panics
    /// When the tool fails.
    pub fn create_topics(&self, topics: &[(&str, u32)]) {
        self.broker
            .create_topics(&self.tools, topics)
            .unwrap_or_else(|error| panic!("creating topics failed: {error:#}"));
    }

    /// SIGKILLs the broker, as a crash would.
    ///
    /// # Panics
    /// When it was not running or survives the signal.
    pub fn kill(&self) {
        let was_running = self
            .broker
            .kill()
            .unwrap_or_else(|error| panic!("killing the broker failed: {error:#}"));
        assert!(
            was_running,
            "the broker was not running when the test killed it"
        );
    }

    /// Starts the broker again on the same ports and data, and returns once it accepts
    /// connections.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&self) {
        self.broker
            .start(&self.tools)
            .unwrap_or_else(|error| panic!("the broker did not restart: {error:#}"));
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        if let Err(error) = self.broker.stop() {
            eprintln!("warning: stopping the test's broker failed: {error:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
