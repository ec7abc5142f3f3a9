//! A SASL_SSL listener (TLS + SCRAM-SHA-512) with Kafka's standard authorizer, for tests that
//! prove clients work with minimal ACLs: the certificates, the listener's `server.properties`
//! lines, the admin's client properties, and the ACL and SCRAM user tools.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The SASL mechanism of the secure listener (the one Kafka and librdkafka both name so).
pub const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";
/// The listener's name in `server.properties`.
const LISTENER: &str = "SASL_SSL";
/// The principal of the plaintext and controller listeners (no authentication there): a super
/// user, so the broker talks to itself and the plaintext port stays the operator's back door.
const ANONYMOUS: &str = "User:ANONYMOUS";

/// One SCRAM user: a name and its password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUser {
    /// The user name; its principal is `User:<name>`.
    pub name: String,
    /// The password (only printable ASCII without `,`, `]`, `"` and `'`: it goes into Kafka's
    /// `SCRAM-SHA-512=[name=…,password=…]` syntax and a JAAS line).
    pub password: String,
}

impl ScramUser {
    /// A user `name` with `password`.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            password: password.into(),
        }
    }

    /// `User:<name>`, as ACLs name it.
    pub fn principal(&self) -> String {
        format!("User:{}", self.name)
    }

    /// `SCRAM-SHA-512=[password=…]`, for `kafka-configs --add-config`.
    pub(crate) fn credential_for_config(&self) -> Result<String> {
        self.credential(false)
    }

    /// Kafka's SCRAM credential syntax, `SCRAM-SHA-512=[name=…,password=…]` (format time) or
    /// `SCRAM-SHA-512=[password=…]` (`kafka-configs`).
    fn credential(&self, with_name: bool) -> Result<String> {
        let unsafe_character = |c: char| !c.is_ascii_graphic() || ",]\"'=[".contains(c);
        if self.name.is_empty() || self.name.chars().any(unsafe_character) {
            bail!(
                "SCRAM user name {:?} is empty or has characters Kafka's credential syntax cannot carry",
                self.name
            );
        }
        if self.password.is_empty() || self.password.chars().any(unsafe_character) {
            bail!(
                "the password of SCRAM user {:?} is empty or has characters Kafka's credential syntax cannot carry",
                self.name
            );
        }
        Ok(match with_name {
            true => format!(
                "{SCRAM_MECHANISM}=[name={},password={}]",
                self.name, self.password
            ),
            false => format!("{SCRAM_MECHANISM}=[password={}]", self.password),
        })
    }
}

impl fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A SASL_SSL listener beside the broker's plaintext and controller listeners.
///
/// The broker runs the standard authorizer with `allow.everyone.if.no.acl.found=false`: on this
/// listener a user may do only what an ACL allows, except the `admin` (a super user, like the
/// anonymous principal of the plaintext and controller listeners). `admin` and `users` get
/// their SCRAM credentials when the log directory is formatted; later users come with
/// [`KafkaBroker::add_scram_users`](crate::KafkaBroker::add_scram_users).
#[derive(Debug, Clone)]
pub struct SecureListener {
    /// The loopback port of the listener.
    pub port: u16,
    /// The super user that manages ACLs and users through this listener.
    pub admin: ScramUser,
    /// Users created at format time.
    pub users: Vec<ScramUser>,
}

impl SecureListener {
    /// `server.properties` lines of the listener, with its TLS key and certificate in `tls_dir`
    /// (to be appended to the listener lists the caller builds).
    pub(crate) fn server_properties(&self, tls_dir: &Path) -> Vec<(String, String)> {
        let prefix = format!("listener.name.{}", LISTENER.to_lowercase());
        let mechanism = SCRAM_MECHANISM.to_lowercase();
        [
            (
                "sasl.enabled.mechanisms".to_owned(),
                SCRAM_MECHANISM.to_owned(),
            ),
            (
                format!("{prefix}.sasl.enabled.mechanisms"),
                SCRAM_MECHANISM.to_owned(),
            ),
            (
                format!("{prefix}.{mechanism}.sasl.jaas.config"),
                "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_owned(),
            ),
            (format!("{prefix}.ssl.keystore.type"), "PEM".to_owned()),
            (
                format!("{prefix}.ssl.keystore.location"),
                tls_dir.join(BROKER_PEM).display().to_string(),
            ),
            (
                "authorizer.class.name".to_owned(),
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_owned(),
            ),
            (
                "allow.everyone.if.no.acl.found".to_owned(),
                "false".to_owned(),
            ),
            (
                "super.users".to_owned(),
                format!("{ANONYMOUS};{}", self.admin.principal()),
            ),
        ]
        .into_iter()
        .collect()
    }

    /// The listener's entry in `listeners` and `advertised.listeners`.
    pub(crate) fn listener(&self) -> String {
        format!("{LISTENER}://127.0.0.1:{}", self.port)
    }

    /// Its entry in `listener.security.protocol.map`.
    pub(crate) fn protocol_mapping() -> String {
        format!("{LISTENER}:{LISTENER}")
    }

    /// `--add-scram` arguments for the storage tool: the admin and the users.
    pub(crate) fn format_arguments(&self) -> Result<Vec<String>> {
        let mut arguments = Vec::new();
        for user in std::iter::once(&self.admin).chain(&self.users) {
            arguments.push("--add-scram".to_owned());
            arguments.push(user.credential(true)?);
        }
        Ok(arguments)
    }

    /// The Java client properties of `user` on this listener (for Kafka's tools), trusting the
    /// CA in `ca_file`.
    pub(crate) fn java_client_properties(user: &ScramUser, ca_file: &Path) -> String {
        format!(
            "security.protocol={LISTENER}\n\
             sasl.mechanism={SCRAM_MECHANISM}\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n",
            user.name,
            user.password,
            ca_file.display()
        )
    }
}

/// librdkafka properties (`(key, value)`) for `user` on a SASL_SSL listener whose certificate
/// `ca_file` (PEM) signed: what `KafkaConfig::properties` needs besides the bootstrap servers.
pub fn librdkafka_properties(user: &ScramUser, ca_file: &Path) -> Vec<(String, String)> {
    [
        ("security.protocol", LISTENER.to_owned()),
        ("sasl.mechanism", SCRAM_MECHANISM.to_owned()),
        ("sasl.username", user.name.clone()),
        ("sasl.password", user.password.clone()),
        ("ssl.ca.location", ca_file.display().to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// The CA certificate (PEM) clients trust.
pub(crate) const CA_PEM: &str = "ca.pem";
/// The broker's private key and certificate chain (PEM), Kafka's `ssl.keystore.type=PEM`.
const BROKER_PEM: &str = "broker.pem";

/// Writes a throwaway CA and a broker certificate it signed (for `127.0.0.1` and `localhost`)
/// into `dir`, unless they are there from an earlier start. Nothing leaves the machine: the CA's
/// key is never written, so nothing else can ever be signed with it.
pub(crate) fn ensure_certificates(dir: &Path) -> Result<PathBuf> {
    let (ca_file, broker_file) = (dir.join(CA_PEM), dir.join(BROKER_PEM));
    if ca_file.is_file() && broker_file.is_file() {
        return Ok(ca_file);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (ca_pem, broker_pem) = certificates().context("generating the TLS certificates failed")?;
    std::fs::write(&broker_file, broker_pem)
        .with_context(|| format!("cannot write {}", broker_file.display()))?;
    std::fs::write(&ca_file, ca_pem)
        .with_context(|| format!("cannot write {}", ca_file.display()))?;
    Ok(ca_file)
}

/// The CA certificate, and the broker's PKCS#8 key followed by its certificate and the CA's.
fn certificates() -> Result<(String, String), rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "event-processor local-stack test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_certificate = ca.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&ca, &ca_key);

    // An IP address in the list becomes an IP SAN: librdkafka and Java check the host name.
    let mut broker = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    broker
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    broker.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    broker.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let broker_key = KeyPair::generate()?;
    let broker_certificate = broker.signed_by(&broker_key, &issuer)?;
    let ca_pem = ca_certificate.pem();
    let broker_pem = format!(
        "{}{}{}",
        broker_key.serialize_pem(),
        broker_certificate.pem(),
        ca_pem
    );
    Ok((ca_pem, broker_pem))
}

/// What an ACL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclOperation {
    /// Consume from a topic; join and commit for a group.
    Read,
    /// Produce to a topic; use a transactional id.
    Write,
    /// Metadata and offsets of a topic; find a group's or transaction's coordinator.
    Describe,
    /// Idempotent producing without write access to any topic (cluster).
    IdempotentWrite,
}

impl AclOperation {
    fn cli_name(self) -> &'static str {
        match self {
            Self::Read => "Read",
            Self::Write => "Write",
            Self::Describe => "Describe",
            Self::IdempotentWrite => "IdempotentWrite",
        }
    }
}

/// What an ACL is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclResource {
    /// One topic.
    Topic(String),
    /// Every topic whose name starts with the prefix.
    TopicPrefix(String),
    /// One consumer group.
    Group(String),
    /// One transactional id.
    TransactionalId(String),
    /// Every transactional id that starts with the prefix.
    TransactionalIdPrefix(String),
    /// The cluster.
    Cluster,
}

impl AclResource {
    /// The tool's resource arguments (the pattern type goes once per run, see
    /// [`acl_tool_runs`]).
    fn cli_arguments(&self) -> Vec<String> {
        let named = |flag: &str, name: &str| vec![flag.to_owned(), name.to_owned()];
        match self {
            Self::Topic(name) | Self::TopicPrefix(name) => named("--topic", name),
            Self::Group(name) => named("--group", name),
            Self::TransactionalId(id) | Self::TransactionalIdPrefix(id) => {
                named("--transactional-id", id)
            }
            Self::Cluster => vec!["--cluster".to_owned()],
        }
    }

    fn is_prefixed(&self) -> bool {
        matches!(self, Self::TopicPrefix(_) | Self::TransactionalIdPrefix(_))
    }
}

/// One allow rule: `principal` (e.g. `User:alice`) may do `operation` on `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// `User:<name>`.
    pub principal: String,
    /// The operation allowed.
    pub operation: AclOperation,
    /// What it is allowed on.
    pub resource: AclResource,
}

impl Acl {
    /// `user` may do `operation` on `resource`.
    pub fn allow(user: &str, operation: AclOperation, resource: AclResource) -> Self {
        Self {
            principal: format!("User:{user}"),
            operation,
            resource,
        }
    }
}

/// The arguments of one ACL tool run per principal, pattern type and set of operations, which
/// together add (`add`) or remove exactly `acls`: one run applies every operation it names to
/// every resource it names, and each run is a JVM start.
pub(crate) fn acl_tool_runs(acls: &[Acl], add: bool) -> Vec<Vec<String>> {
    let mut operations_of: Vec<(&str, &AclResource, Vec<AclOperation>)> = Vec::new();
    for acl in acls {
        match operations_of.iter_mut().find(|(principal, resource, _)| {
            *principal == acl.principal && **resource == acl.resource
        }) {
            Some((_, _, operations)) if operations.contains(&acl.operation) => {}
            Some((_, _, operations)) => operations.push(acl.operation),
            None => operations_of.push((&acl.principal, &acl.resource, vec![acl.operation])),
        }
    }
    let mut runs: Vec<(&str, bool, Vec<AclOperation>, Vec<&AclResource>)> = Vec::new();
    for (principal, resource, mut operations) in operations_of {
        operations.sort_by_key(|operation| operation.cli_name());
        let prefixed = resource.is_prefixed();
        match runs
            .iter_mut()
            .find(|(p, pre, ops, _)| *p == principal && *pre == prefixed && *ops == operations)
        {
            Some((_, _, _, resources)) => resources.push(resource),
            None => runs.push((principal, prefixed, operations, vec![resource])),
        }
    }
    runs.into_iter()
        .map(|(principal, prefixed, operations, resources)| {
            let mut arguments = match add {
                true => vec!["--add".to_owned()],
                // Without --force the tool asks for confirmation on stdin.
                false => vec!["--remove".to_owned(), "--force".to_owned()],
            };
            arguments.extend(["--allow-principal".to_owned(), principal.to_owned()]);
            for operation in operations {
                arguments.extend(["--operation".to_owned(), operation.cli_name().to_owned()]);
            }
            for resource in resources {
                arguments.extend(resource.cli_arguments());
            }
            if prefixed {
                arguments.extend(["--resource-pattern-type".to_owned(), "prefixed".to_owned()]);
            }
            arguments
        })
        .collect()
}

/// Runs every command at once (each tool is a JVM: seconds to start) and fails with the output
/// of the first that failed.
pub(crate) fn run_all(commands: Vec<(String, Command)>) -> Result<()> {
    let children = commands
        .into_iter()
        .map(|(what, mut command)| {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run Kafka's tool for {what}"))
                .map(|child| (what, child))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut failures = Vec::new();
    for (what, child) in children {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            failures.push(format!(
                "{what} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => bail!("{}", failures.join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_password_is_never_in_its_debug_output() {
        let user = ScramUser::new("alice", "s3cret-Pa55");
        let shown = format!("{user:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_that_kafkas_syntax_cannot_carry_are_refused() {
        assert_eq!(
            ScramUser::new("alice", "pw")
                .credential(true)
                .expect("valid"),
            "SCRAM-SHA-512=[name=alice,password=pw]"
        );
        for (name, password) in [
            ("al,ice", "pw"),
            ("alice", "p]w"),
            ("alice", ""),
            ("", "pw"),
        ] {
            assert!(ScramUser::new(name, password).credential(true).is_err());
        }
    }

    #[test]
    fn acls_become_one_tool_run_per_principal_pattern_type_and_operations() {
        let topic = |name: &str| AclResource::Topic(name.to_owned());
        let acls = [
            Acl::allow("alice", AclOperation::Read, topic("in")),
            Acl::allow(
                "alice",
                AclOperation::Read,
                AclResource::Group("g".to_owned()),
            ),
            Acl::allow("alice", AclOperation::Write, topic("out")),
            Acl::allow("alice", AclOperation::Describe, topic("out")),
            Acl::allow("alice", AclOperation::Describe, topic("dlq")),
            Acl::allow("alice", AclOperation::Write, topic("dlq")),
            Acl::allow("alice", AclOperation::Write, topic("dlq")),
            Acl::allow(
                "alice",
                AclOperation::Write,
                AclResource::TransactionalIdPrefix("g".to_owned()),
            ),
            Acl::allow("bob", AclOperation::Read, topic("in")),
        ];
        let runs: Vec<String> = acl_tool_runs(&acls, true)
            .iter()
            .map(|run| run.join(" "))
            .collect();
        assert_eq!(
            runs,
            [
                "--add --allow-principal User:alice --operation Read --topic in --group g",
                "--add --allow-principal User:alice --operation Describe --operation Write \
                 --topic out --topic dlq",
                "--add --allow-principal User:alice --operation Write --transactional-id g \
                 --resource-pattern-type prefixed",
                "--add --allow-principal User:bob --operation Read --topic in",
            ]
        );
        assert!(
            acl_tool_runs(&acls[..1], false)[0]
                .starts_with(&["--remove".to_owned(), "--force".to_owned()])
        );
    }

    #[test]
    fn certificates_are_written_once_and_the_broker_file_holds_key_and_chain() {
        let dir = std::env::temp_dir().join(format!("local-stack-tls-{}", std::process::id()));
        let ca_file = ensure_certificates(&dir).expect("certificates");
        let ca = std::fs::read_to_string(&ca_file).expect("ca");
        let broker = std::fs::read_to_string(dir.join(BROKER_PEM)).expect("broker");
        assert!(
            broker.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{broker}"
        );
        assert_eq!(broker.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(broker.ends_with(&ca));
        ensure_certificates(&dir).expect("again");
        assert_eq!(std::fs::read_to_string(&ca_file).expect("ca"), ca, "kept");
        let _ = std::fs::remove_dir_all(dir);
    }
}
