//! A Kafka broker of a test's own with a SASL_SSL listener (TLS + SCRAM-SHA-512) and ACLs
//! enforced, for tests that prove clients work with the minimal ACLs and fail clearly without.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_adapters::KafkaConfig;
use local_stack::{Acl, KafkaBroker, ScramUser, SecureListener, Tools, librdkafka_properties};

use crate::acl_wire;
use crate::own_stack::{answers_api_versions, free_ports};
use crate::{scratch_dir, unique_name};

/// How long a start may take before the broker answers requests.
const START_PATIENCE: Duration = Duration::from_secs(90);
/// How long the broker may take to enforce an ACL change its controller answered.
const ACL_PATIENCE: Duration = Duration::from_secs(10);

/// A single-node Apache Kafka on free loopback ports in a scratch directory, with a SASL_SSL
/// listener beside its plaintext one; stopped and deleted when dropped.
///
/// On the SASL_SSL listener ([`SecureBroker::bootstrap`]) the standard authorizer lets a user do
/// only what an ACL allows ([`SecureBroker::grant`]); its admin is a super user. The plaintext
/// listener ([`SecureBroker::plaintext_bootstrap`]) is the anonymous super user's, for a test's
/// setup (topics, fixtures) only.
///
/// The blocking methods (start, and those that run Kafka's command-line tools: a JVM each, a
/// few seconds) are for `tokio::task::spawn_blocking` in async code.
#[derive(Debug)]
pub struct SecureBroker {
    broker: KafkaBroker,
    tools: Tools,
    dir: PathBuf,
    admin: ScramUser,
}

impl SecureBroker {
    /// Fetches Kafka if this machine has not yet, generates a throwaway CA and broker certificate,
    /// formats the broker (with its admin's SCRAM credentials) and starts it; returns once both
    /// listeners answer. Blocks for seconds.
    ///
    /// # Panics
    /// When Kafka cannot be fetched or the broker does not start.
    pub fn start(name: &str) -> Self {
        Self::start_with_users(name, &[])
    }

    /// Like [`SecureBroker::start`], with `users` created when the broker is formatted: no tool
    /// run per user, unlike [`SecureBroker::add_users`].
    ///
    /// # Panics
    /// When Kafka cannot be fetched or the broker does not start.
    pub fn start_with_users(name: &str, users: &[ScramUser]) -> Self {
        let tools =
            Tools::ensure().unwrap_or_else(|error| panic!("Kafka is not available: {error:#}"));
        let dir = scratch_dir(&format!("secure-broker-{name}"));
        let [port, controller_port, secure_port] = free_ports();
        let admin = ScramUser::new("admin", unique_name("admin-password"));
        let broker = KafkaBroker::new(&dir, port, controller_port).with_security(SecureListener {
            port: secure_port,
            admin: admin.clone(),
            users: users.to_vec(),
        });
        let own = Self {
            broker,
            tools,
            dir,
            admin,
        };
        own.broker
            .start(&own.tools)
            .unwrap_or_else(|error| panic!("the secure broker did not start: {error:#}"));
        let deadline = Instant::now() + START_PATIENCE;
        while !answers_api_versions(port) {
            assert!(
                Instant::now() < deadline,
                "the secure broker answered no request within {START_PATIENCE:?}; log: {}",
                own.broker.daemon().log_file.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        own
    }

    /// `bootstrap.servers` of the SASL_SSL listener.
    pub fn bootstrap(&self) -> String {
        self.broker
            .secure_bootstrap()
            .expect("built with a secure listener")
    }

    /// `bootstrap.servers` of the plaintext listener, where anyone is a super user: for a test's
    /// setup only.
    pub fn plaintext_bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// The CA certificate (PEM) of the SASL_SSL listener: librdkafka's `ssl.ca.location`.
    pub fn ca_file(&self) -> PathBuf {
        self.broker.ca_file()
    }

    /// The super user of the SASL_SSL listener.
    pub fn admin(&self) -> &ScramUser {
        &self.admin
    }

    /// A client configuration for `user` on the SASL_SSL listener: `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password` and `ssl.ca.location`.
    pub fn client_config(&self, user: &ScramUser) -> KafkaConfig {
        librdkafka_properties(user, &self.ca_file())
            .into_iter()
            .fold(
                KafkaConfig::new(self.bootstrap()),
                |config, (key, value)| config.with(key, value),
            )
    }

    /// Creates SCRAM users (with Kafka's config tool, as the admin, all at once); they may
    /// authenticate but do nothing until granted ACLs. Blocks for a few seconds.
    ///
    /// # Panics
    /// When the tool fails.
    pub fn add_users(&self, users: &[ScramUser]) {
        self.broker
            .add_scram_users(&self.tools, users)
            .unwrap_or_else(|error| panic!("adding SCRAM users failed: {error:#}"));
    }

    /// Adds ACLs with one CreateAcls request to the plaintext listener (its anonymous super
    /// user): milliseconds for any number, where Kafka's ACL tool takes a JVM start per
    /// principal and operation set. Returns once the broker enforces them. Blocks briefly.
    ///
    /// # Panics
    /// When the broker refuses one of them, or does not enforce them within 10 s.
    pub fn grant(&self, acls: &[Acl]) {
        acl_wire::create_acls(self.broker.port(), acls)
            .unwrap_or_else(|error| panic!("adding ACLs failed: {error}"));
        self.wait_for_acls(acls, true);
    }

    /// Removes ACLs with Kafka's own ACL tool, as the admin over SASL_SSL (the way an operator
    /// would; a JVM start per principal and operation set). Blocks for a few seconds.
    ///
    /// # Panics
    /// When the tool fails.
    pub fn revoke(&self, acls: &[Acl]) {
        self.broker
            .remove_acls(&self.tools, acls)
            .unwrap_or_else(|error| panic!("removing ACLs failed: {error:#}"));
        self.wait_for_acls(acls, false);
    }

    /// Waits until the broker's authorizer holds every one of `acls` (`present`) or none: it
    /// follows the controller, which answered the change, by a moment.
    fn wait_for_acls(&self, acls: &[Acl], present: bool) {
        let deadline = Instant::now() + ACL_PATIENCE;
        loop {
            match acl_wire::acls_in_force(self.broker.port(), acls, present) {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => panic!("asking the broker for its ACLs failed: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not {} the ACLs within {ACL_PATIENCE:?}",
                if present { "enforce" } else { "drop" }
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates `(topic, partitions)` pairs with Kafka's own topic tool on the plaintext listener.
    ///
    /// # Panics
    /// When the tool fails.
    pub fn create_topics(&self, topics: &[(&str, u32)]) {
        self.broker
            .create_topics(&self.tools, topics)
            .unwrap_or_else(|error| panic!("creating topics failed: {error:#}"));
    }

    /// The broker's log file, to show when a test fails.
    pub fn log_file(&self) -> PathBuf {
        self.broker.daemon().log_file
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        if let Err(error) = self.broker.stop() {
            eprintln!("warning: stopping the test's secure broker failed: {error:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
