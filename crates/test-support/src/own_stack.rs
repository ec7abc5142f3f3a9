//! A Kafka broker of a test's own, for tests that crash and restart it: killing the shared test
//! broker would disturb every test running beside them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use local_stack::{KafkaBroker, Tools};

use crate::scratch_dir;

/// How long a start or restart may take before the broker answers requests.
const START_PATIENCE: Duration = Duration::from_secs(90);

/// A single-node Apache Kafka on free loopback ports in a scratch directory; stopped when
/// dropped. Its data survives [`OwnBroker::kill`] and [`OwnBroker::restart`].
#[derive(Debug)]
pub struct OwnBroker {
    broker: KafkaBroker,
    tools: Tools,
    dir: PathBuf,
    /// Client and controller port.
    ports: [u16; 2],
}

impl OwnBroker {
    /// Fetches Kafka if this machine has not yet (`cargo xtask test` already did), then formats
    /// and starts a new broker, and returns once it answers requests.
    ///
    /// Blocks the calling thread for seconds: from async code call it in
    /// `tokio::task::spawn_blocking` or `block_in_place`.
    ///
    /// # Panics
    /// When Kafka cannot be fetched or the broker does not start.
    pub fn start(name: &str) -> Self {
        let own = Self::prepare(name);
        own.start_and_wait("the test's own broker did not start");
        own
    }

    /// Like [`OwnBroker::start`], but does not start the broker yet: its ports are picked (and
    /// [`OwnBroker::bootstrap`] known) so a test can start a client before the broker, then
    /// [`OwnBroker::launch`] it. Nothing listens on the ports meanwhile.
    ///
    /// # Panics
    /// When Kafka cannot be fetched.
    pub fn prepare(name: &str) -> Self {
        let tools =
            Tools::ensure().unwrap_or_else(|error| panic!("Kafka is not available: {error:#}"));
        let dir = scratch_dir(&format!("broker-{name}"));
        let [port, controller_port] = free_ports();
        // After a crash the controller refuses the restarted broker's registration until the
        // session of the killed one expired (9 s by default): heartbeats every 0.5 s and a 3 s
        // session make a restart take a few seconds instead of twelve.
        let broker = KafkaBroker::new(&dir, port, controller_port)
            .with_property("broker.heartbeat.interval.ms", "500")
            .with_property("broker.session.timeout.ms", "3000");
        Self {
            broker,
            tools,
            dir,
            ports: [port, controller_port],
        }
    }

    /// Starts a broker made by [`OwnBroker::prepare`] (formatting it) and returns once it answers
    /// requests. Blocks like [`OwnBroker::start`].
    ///
    /// # Panics
    /// When the broker does not start.
    pub fn launch(&self) {
        self.start_and_wait("the test's own broker did not start");
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

    /// SIGKILLs the broker, as a crash would, and returns once it is gone: its ports are free
    /// again.
    ///
    /// # Panics
    /// When it was not running, survives the signal or its ports stay taken.
    pub fn kill(&self) {
        let was_running = self
            .broker
            .kill()
            .unwrap_or_else(|error| panic!("killing the broker failed: {error:#}"));
        assert!(
            was_running,
            "the broker was not running when the test killed it"
        );
        // The JVM's main thread shows as a zombie (which is what `kill` waits for) while its
        // other threads still exit, and until the last of them is gone the process keeps its
        // listening sockets: a restart at once then finds its own ports "in use".
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(port) = self
            .ports
            .iter()
            .find(|port| TcpListener::bind(("127.0.0.1", **port)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "port {port} is still taken 30 s after the broker was killed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the broker again on the same ports and data, and returns once it answers requests
    /// (after a kill it first recovers its logs). Blocks like [`OwnBroker::start`].
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&self) {
        self.start_and_wait("the broker did not restart");
    }

    /// Starts the process (which returns once the port accepts connections), then waits until the
    /// broker answers a request. Kafka 4.4 opens its port when it is ready to serve (the first
    /// request is answered within milliseconds, also after a kill); the check makes that a
    /// guarantee for the test's first client (an admin with a 10 s request timeout) instead of
    /// an observation about one Kafka version.
    fn start_and_wait(&self, failure: &str) {
        self.broker
            .start(&self.tools)
            .unwrap_or_else(|error| panic!("{failure}: {error:#}"));
        let deadline = Instant::now() + START_PATIENCE;
        while !answers_api_versions(self.broker.port()) {
            assert!(
                Instant::now() < deadline,
                "{failure}: its port accepts connections but it answered no request within {START_PATIENCE:?}; log: {}",
                self.broker.daemon().log_file.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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

/// `N` distinct loopback ports nothing listens on: all are held while the next is picked, so
/// no two are the same port.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|index| {
        held[index]
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}

/// Whether a Kafka broker on 127.0.0.1:`port` answers an ApiVersions request (version 0, which
/// every broker answers, with an error code if it no longer supports it).
pub(crate) fn answers_api_versions(port: u16) -> bool {
    const CORRELATION_ID: i32 = 0x0e_b0_0c;
    let exchange = || -> std::io::Result<bool> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let client_id = b"own-broker-probe";
        let mut request = Vec::new();
        request.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
        request.extend_from_slice(&0i16.to_be_bytes()); // version 0
        request.extend_from_slice(&CORRELATION_ID.to_be_bytes());
        request.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        request.extend_from_slice(client_id);
        let mut framed = (request.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&request);
        stream.write_all(&framed)?;
        let mut header = [0u8; 8];
        stream.read_exact(&mut header)?;
        let correlation_id = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        Ok(correlation_id == CORRELATION_ID)
    };
    exchange().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{create_topics, produce_and_wait, require_stack, unique_name};
    use kafka_adapters::{KafkaConfig, OutboundRecord, ReadUntil, read_topic};
    use std::sync::Arc;

    #[test]
    fn free_ports_differ() {
        let [first, second, third] = free_ports();
        assert!(first != second && second != third && first != third);
    }

    #[test]
    fn a_port_without_a_broker_does_not_answer() {
        let [port] = free_ports();
        assert!(!answers_api_versions(port));
    }

    /// The broker answers at once after start and restart, is gone after a kill, and keeps
    /// acknowledged records across the kill.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_survive_a_kill_and_restart() {
        // Only where the stack runs: that is where Kafka has been fetched.
        let _stack = require_stack!();
        let broker = Arc::new(
            tokio::task::spawn_blocking(|| OwnBroker::start("own-broker-test"))
                .await
                .expect("broker started"),
        );
        let kafka = KafkaConfig::new(broker.bootstrap());
        let topic = unique_name("own-broker");
        create_topics(&kafka, [topic.as_str()], 2).await;
        let shared: Arc<str> = Arc::from(topic.as_str());
        let records = (0..100)
            .map(|index| OutboundRecord {
                topic: Arc::clone(&shared),
                key: Some(format!("key-{index}").into_bytes()),
                payload: format!("value-{index}").into_bytes(),
                headers: Vec::new(),
            })
            .collect();
        produce_and_wait(&kafka, records, Duration::from_secs(60)).await;

        let killed = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || killed.kill())
            .await
            .expect("killed");
        let port: u16 = broker
            .bootstrap()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .expect("a port");
        assert!(!answers_api_versions(port), "nothing answers after a kill");

        let restarted = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || restarted.restart())
            .await
            .expect("restarted");
        let stored = read_topic(
            &kafka,
            &topic,
            ReadUntil::Count(100),
            Duration::from_secs(60),
        )
        .await
        .expect("records read after the restart");
        let mut values: Vec<String> = stored
            .iter()
            .map(|record| {
                String::from_utf8(record.payload.clone().unwrap_or_default()).expect("utf-8")
            })
            .collect();
        values.sort_unstable();
        let mut expected: Vec<String> = (0..100).map(|index| format!("value-{index}")).collect();
        expected.sort_unstable();
        assert_eq!(values, expected);
    }
}
