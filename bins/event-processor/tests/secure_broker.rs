//! The binaries on a broker that authenticates (TLS + SASL/SCRAM-SHA-512) and authorizes (the
//! standard authorizer, nothing allowed without an ACL), with the ACLs of docs/OPERATIONS.md
//! ("Broker security") and nothing more:
//!
//! - the processor, its SASL credentials only in a properties file named by its config file
//!   (`kafka.properties_file`), routes end to end in at-least-once and in exactly-once mode, is
//!   ready and reports lag; the sample producer, the consumer (verify mode) and `dlq-replay` work
//!   over SASL_SSL with `--kafka-properties-file`;
//! - without READ on its input or its group, WRITE on an output at start, or (exactly-once) WRITE
//!   on its transactional id prefix, the processor exits with code 2 and names the refusal; when
//!   an output's WRITE ACL goes away while it runs, that output's events are dead-lettered as
//!   `refused` and the others keep flowing;
//! - with a wrong password start-up waits (librdkafka shows the admin client a refused login only
//!   as a transport failure) and says in `/ready` and its log that the credentials may be why.
//!
//! One test with one broker of its own (a broker start and an ACL revocation are JVM starts),
//! whose scenarios run side by side, each with its own user, topics and group. The registry is
//! the shared one of the local stack (`require_stack!`). The sample tools are the workspace's
//! other binaries beside this one (`cargo build --workspace` builds them).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Processor, SentEvent, World, allowed, event_key};
use test_support::{
    Acl, AclOperation, AclResource, FAST_GROUP_PROPERTIES, ScramUser, SecureBroker, Stack,
    require_stack, unique_name,
};

/// Upper bound for what works: start-up, a group join, events routed.
const PATIENCE: Duration = Duration::from_secs(90);
/// Upper bound for a refusal to end the processor: well below "hangs".
const REFUSED_WITHIN: Duration = Duration::from_secs(60);

/// The broker and the shared registry, for every scenario.
struct Cluster {
    broker: SecureBroker,
    registry_url: String,
}

impl Cluster {
    /// A world (topics, routing file, input schema) set up as the anonymous super user on the
    /// broker's plaintext listener.
    async fn world(&self, name: &str) -> World {
        let stack = Stack {
            kafka_bootstrap: self.broker.plaintext_bootstrap(),
            registry_url: self.registry_url.clone(),
        };
        World::new(stack, name, 2).await
    }

    /// A librdkafka properties file with `user`'s SASL_SSL settings (as an operator's Secret
    /// would hold them), in `dir`.
    fn properties_file(&self, dir: &Path, user: &ScramUser, password: &str) -> PathBuf {
        let config = self
            .broker
            .client_config(&ScramUser::new(&user.name, password));
        let mut text = String::from("# SASL_SSL client settings\n");
        for (key, value) in &config.properties {
            text.push_str(&format!("{key}={value}\n"));
        }
        let path = dir.join(format!("{}.properties", user.name));
        std::fs::write(&path, text).expect("properties file");
        path
    }
}

/// A processor's user and the minimal ACLs of docs/OPERATIONS.md for a world.
fn processor_acls(user: &ScramUser, world: &World) -> Vec<Acl> {
    let allow = |operation, resource| Acl::allow(&user.name, operation, resource);
    let mut acls = vec![
        allow(AclOperation::Read, AclResource::Topic(world.input.clone())),
        allow(AclOperation::Read, AclResource::Group(world.group.clone())),
        allow(
            AclOperation::Write,
            AclResource::Topic(world.dead_letter.clone()),
        ),
        allow(
            AclOperation::Write,
            AclResource::TransactionalIdPrefix(format!("{}.", world.group)),
        ),
    ];
    acls.extend(
        world
            .outputs
            .values()
            .map(|topic| allow(AclOperation::Write, AclResource::Topic(topic.clone()))),
    );
    acls
}

/// `acls` without the one on `resource` with `operation`.
fn without(acls: Vec<Acl>, operation: AclOperation, resource: &AclResource) -> Vec<Acl> {
    let before = acls.len();
    let kept: Vec<Acl> = acls
        .into_iter()
        .filter(|acl| !(acl.operation == operation && &acl.resource == resource))
        .collect();
    assert_eq!(kept.len() + 1, before, "exactly one ACL left out");
    kept
}

/// The processor's config file for `world`: every setting, the credentials only by the path of
/// the properties file.
fn write_config(
    cluster: &Cluster,
    world: &World,
    processor_id: &str,
    properties_file: &Path,
    delivery: &str,
) -> PathBuf {
    let consumer_properties: String = FAST_GROUP_PROPERTIES
        .iter()
        .map(|(key, value)| format!("\"{key}\" = \"{value}\"\n"))
        .collect();
    let config = format!(
        r#"processor_id = "{processor_id}"
[kafka]
bootstrap_servers = "{bootstrap}"
input_topic = "{input}"
group_id = "{group}"
dead_letter_topic = "{dead_letter}"
properties_file = {properties_file:?}
missing_topics_wait_ms = 10000
[kafka.consumer_properties]
{consumer_properties}[kafka.producer_properties]
"linger.ms" = "5"
[registry]
url = "{registry}"
[routing]
file = {routing:?}
[pipeline]
delivery = "{delivery}"
[http]
enabled = true
listen = "127.0.0.1:0"
[health]
check_interval_ms = 500
[log]
level = "info"
"#,
        bootstrap = cluster.broker.bootstrap(),
        input = world.input,
        group = world.group,
        dead_letter = world.dead_letter,
        registry = cluster.registry_url,
        routing = world.routing_file,
    );
    let path = world.dir().join(format!("{processor_id}.toml"));
    std::fs::write(&path, config).expect("config file");
    path
}

/// Starts the processor with only `--config`: nothing secret on its command line.
fn start_processor(world: &World, processor_id: &str, config: &Path) -> Processor {
    let config = config.to_str().expect("UTF-8 path");
    Processor::spawn(
        &["--config", config],
        world.dir().join(format!("{processor_id}.log")),
    )
}

/// Waits until the processor exits by itself (a refusal) and returns its exit status.
async fn refused_exit(processor: &mut Processor, what: &str) -> ExitStatus {
    let started = Instant::now();
    let status = processor.exit_within(REFUSED_WITHIN).await;
    let Some(status) = status else {
        panic!(
            "{what}: the processor still runs after {REFUSED_WITHIN:?}; log:\n{}",
            processor.log()
        );
    };
    eprintln!("{what}: exited with {status} after {:?}", started.elapsed());
    status
}

/// Polls `read` until it holds at least `ids`, within [`PATIENCE`].
async fn wait_for_ids<F, Fut>(what: &str, processor: &Processor, ids: &BTreeSet<String>, read: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen: BTreeSet<String> = read().await.into_iter().collect();
        if ids.is_subset(&seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: missing {:?} after {PATIENCE:?}; log:\n{}",
            ids.difference(&seen).collect::<Vec<_>>(),
            processor.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn allowed_ids(events: &[SentEvent]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .map(|event| event.id.clone())
        .collect()
}

/// One of the workspace's other binaries, beside this one in the target directory.
fn tool(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_event-processor"))
        .parent()
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (or `-p {name}`) before this test",
        path.display()
    );
    path
}

/// Runs a tool to its end (blocking, for `spawn_blocking`) and returns its status and output.
fn run_tool(name: &str, args: &[String]) -> (ExitStatus, String) {
    let output = Command::new(tool(name))
        .args(args)
        .env_remove("KAFKA_PROPERTIES_FILE")
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|error| panic!("{name} does not run: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// What no argument of the running processor may contain: its password.
async fn assert_not_on_command_line(processor: &mut Processor, password: &str) {
    // Once it serves its endpoint, it runs the processor's code with its final command line.
    processor.http_address().await;
    let command_line = std::fs::read(format!("/proc/{}/cmdline", processor.pid()))
        .unwrap_or_else(|error| panic!("the processor's command line: {error}"));
    assert!(
        processor.is_running() && !command_line.is_empty(),
        "the processor runs; log:\n{}",
        processor.log()
    );
    assert!(
        !String::from_utf8_lossy(&command_line).contains(password),
        "the password shows on the processor's command line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binaries_work_with_minimal_acls_over_sasl_ssl_and_refuse_clearly_without() {
    let stack = require_stack!();
    let users = [
        "at-least-once",
        "exactly-once",
        "tools",
        "no-input",
        "no-group",
        "no-output",
        "no-transactional-id",
        "revoked-output",
        "wrong-password",
    ]
    .map(|role| ScramUser::new(format!("user-{role}"), unique_name("password")));
    let broker = {
        let users = users.to_vec();
        tokio::task::spawn_blocking(move || SecureBroker::start_with_users("binaries", &users))
            .await
            .expect("broker start")
    };
    let cluster = Arc::new(Cluster {
        broker,
        registry_url: stack.registry_url.clone(),
    });
    let [
        at_least_once,
        exactly_once_user,
        tools,
        no_input,
        no_group,
        no_output,
        no_transactional_id,
        revoked_output,
        wrong_password,
    ] = users;
    tokio::join!(
        routes_at_least_once_and_serves_the_tools(&cluster, at_least_once, tools),
        routes_exactly_once(&cluster, exactly_once_user),
        a_missing_acl_exits_2(&cluster, no_input, Missing::ReadInput),
        a_missing_acl_exits_2(&cluster, no_group, Missing::ReadGroup),
        a_missing_acl_exits_2(&cluster, no_output, Missing::WriteOutput),
        a_missing_acl_exits_2(&cluster, no_transactional_id, Missing::TransactionalId),
        write_revoked_while_running_dead_letters_as_refused(&cluster, revoked_output),
        a_wrong_password_keeps_start_up_waiting_and_says_why(&cluster, wrong_password),
    );
}

async fn routes_at_least_once_and_serves_the_tools(
    cluster: &Cluster,
    user: ScramUser,
    tools: ScramUser,
) {
    let world = cluster.world("sec-alo").await;
    let tools_group = unique_name("sec-alo-verify");
    let mut acls = processor_acls(&user, &world);
    let allow = |operation, resource| Acl::allow(&tools.name, operation, resource);
    acls.push(allow(
        AclOperation::Write,
        AclResource::Topic(world.input.clone()),
    ));
    acls.push(allow(
        AclOperation::Read,
        AclResource::Topic(world.dead_letter.clone()),
    ));
    acls.push(allow(
        AclOperation::Read,
        AclResource::Group(tools_group.clone()),
    ));
    acls.extend(
        world
            .outputs
            .values()
            .map(|topic| allow(AclOperation::Read, AclResource::Topic(topic.clone()))),
    );
    cluster.broker.grant(&acls);

    let properties = cluster.properties_file(world.dir(), &user, &user.password);
    let config = write_config(cluster, &world, "alo-0", &properties, "at-least-once");
    let mut processor = start_processor(&world, "alo-0", &config);
    assert_not_on_command_line(&mut processor, &user.password).await;
    processor.wait_for_ready_status(200, PATIENCE).await;
    processor.wait_assigned().await;

    let tool_properties = cluster.properties_file(world.dir(), &tools, &tools.password);
    let properties_flag = tool_properties.to_str().expect("UTF-8").to_owned();
    let manifest = world.dir().join("manifest.jsonl");
    let common = |topic_flag: &str, topic: &str| {
        vec![
            "--bootstrap-servers".to_owned(),
            cluster.broker.bootstrap(),
            "--schema-registry-url".to_owned(),
            cluster.registry_url.clone(),
            "--kafka-properties-file".to_owned(),
            properties_flag.clone(),
            topic_flag.to_owned(),
            topic.to_owned(),
        ]
    };
    let mut producer_args = common("--topic", &world.input);
    producer_args.extend(
        [
            "--tenant",
            "FINANCE:f-1",
            "--tenant",
            "MARKETING:m-1",
            "--count",
            "6",
            "--poison",
            "2",
            "--manifest",
            manifest.to_str().expect("UTF-8"),
        ]
        .map(str::to_owned),
    );
    let (status, output) =
        tokio::task::spawn_blocking(move || run_tool("event-producer", &producer_args))
            .await
            .expect("producer ran");
    assert!(status.success(), "event-producer: {status}\n{output}");

    let outputs: Vec<String> = world.outputs.values().cloned().collect();
    let mut consumer_args = common("--topics", &outputs.join(","));
    consumer_args.extend(
        [
            "--verify",
            manifest.to_str().expect("UTF-8"),
            "--group",
            &tools_group,
            "--dead-letter-topic",
            &world.dead_letter,
            "--accept-dead-lettered",
            "--idle-timeout-ms",
            "30000",
            "--quiet",
        ]
        .map(str::to_owned),
    );
    for (destination, topic) in &world.outputs {
        consumer_args.push("--destination-topic".to_owned());
        consumer_args.push(format!("{destination}={topic}"));
    }
    let (status, output) =
        tokio::task::spawn_blocking(move || run_tool("event-consumer", &consumer_args))
            .await
            .expect("consumer ran");
    assert!(
        status.success(),
        "event-consumer --verify: {status}\n{output}\nprocessor log:\n{}",
        processor.log()
    );

    // The two poison values are on the dead-letter topic (`undecodable`): replay them.
    let input_before: i64 = world.input_ends().await.values().sum();
    let mut replay_args = common("--dlq-topic", &world.dead_letter);
    replay_args.extend(
        [
            "--to",
            &world.input,
            "--reason",
            "undecodable",
            "--timeout-secs",
            "60",
        ]
        .map(str::to_owned),
    );
    replay_args.retain(|arg| arg != "--schema-registry-url" && *arg != cluster.registry_url);
    let (status, output) =
        tokio::task::spawn_blocking(move || run_tool("dlq-replay", &replay_args))
            .await
            .expect("dlq-replay ran");
    assert!(status.success(), "dlq-replay: {status}\n{output}");
    let input_after: i64 = world.input_ends().await.values().sum();
    assert_eq!(input_after - input_before, 2, "replayed: {output}");

    // The lag check (offsets of the group, watermarks of the input) works with these ACLs.
    processor
        .wait_for_metrics("consumer lag reported", PATIENCE, |scrape| {
            !scrape.all("event_processor_consumer_lag").is_empty()
        })
        .await;
    let ready = processor.wait_for_ready_status(200, PATIENCE).await;
    eprintln!("at-least-once: ready {ready}");
    let status = processor.stop();
    assert!(status.success(), "clean stop: {status}");
}

async fn routes_exactly_once(cluster: &Cluster, user: ScramUser) {
    let world = cluster.world("sec-eos").await;
    cluster.broker.grant(&processor_acls(&user, &world));
    let properties = cluster.properties_file(world.dir(), &user, &user.password);
    let config = write_config(cluster, &world, "eos-0", &properties, "exactly-once");
    let mut processor = start_processor(&world, "eos-0", &config);
    assert_not_on_command_line(&mut processor, &user.password).await;
    processor.wait_assigned().await;
    let events = world.plan_events("eos", 9);
    world.produce(&events).await;
    let ids = allowed_ids(&events);
    wait_for_ids("exactly-once, committed outputs", &processor, &ids, || {
        world.routed_ids_committed()
    })
    .await;
    let routed = world.routed_ids_committed().await;
    assert_eq!(routed.len(), ids.len(), "no duplicates: {routed:?}");
    let status = processor.stop();
    assert!(status.success(), "clean stop: {status}");
}

/// The ACL a refusal scenario leaves out.
#[derive(Debug, Clone, Copy)]
enum Missing {
    ReadInput,
    ReadGroup,
    WriteOutput,
    TransactionalId,
}

impl Missing {
    /// The ACL left out, the delivery mode, and what the log must name: the broker's error and
    /// the resource.
    fn case(
        self,
        world: &World,
    ) -> (
        AclOperation,
        AclResource,
        &'static str,
        &'static str,
        String,
    ) {
        match self {
            Self::ReadInput => (
                AclOperation::Read,
                AclResource::Topic(world.input.clone()),
                "at-least-once",
                "TopicAuthorizationFailed",
                world.input.clone(),
            ),
            Self::ReadGroup => (
                AclOperation::Read,
                AclResource::Group(world.group.clone()),
                "at-least-once",
                "GroupAuthorizationFailed",
                world.group.clone(),
            ),
            Self::WriteOutput => (
                AclOperation::Write,
                AclResource::Topic(world.outputs["FINANCE"].clone()),
                "at-least-once",
                "TopicAuthorizationFailed",
                world.outputs["FINANCE"].clone(),
            ),
            Self::TransactionalId => (
                AclOperation::Write,
                AclResource::TransactionalIdPrefix(format!("{}.", world.group)),
                "exactly-once",
                "TransactionalIdAuthorizationFailed",
                "transactional".to_owned(),
            ),
        }
    }
}

/// Without one of its ACLs the processor exits with code 2 (a configuration problem, not a
/// crash to restart) within [`REFUSED_WITHIN`] and names the refusal.
async fn a_missing_acl_exits_2(cluster: &Cluster, user: ScramUser, missing: Missing) {
    let name = format!("{missing:?}").to_lowercase();
    let world = cluster.world(&format!("sec-no-{name}")).await;
    let (operation, resource, delivery, error, named) = missing.case(&world);
    cluster.broker.grant(&without(
        processor_acls(&user, &world),
        operation,
        &resource,
    ));
    let properties = cluster.properties_file(world.dir(), &user, &user.password);
    let id = format!("no-{name}-0");
    let config = write_config(cluster, &world, &id, &properties, delivery);
    let mut processor = start_processor(&world, &id, &config);
    let status = refused_exit(&mut processor, &format!("without {missing:?}")).await;
    let log = processor.log();
    assert_eq!(
        status.code(),
        Some(2),
        "{missing:?}: exit code; log:\n{log}"
    );
    assert!(
        log.contains(error) && log.contains(&named),
        "{missing:?}: the log names {error} and {named}; log:\n{log}"
    );
}

async fn write_revoked_while_running_dead_letters_as_refused(cluster: &Cluster, user: ScramUser) {
    let world = cluster.world("sec-revoked").await;
    let acls = processor_acls(&user, &world);
    cluster.broker.grant(&acls);
    let properties = cluster.properties_file(world.dir(), &user, &user.password);
    let config = write_config(cluster, &world, "revoked-0", &properties, "at-least-once");
    let mut processor = start_processor(&world, "revoked-0", &config);
    processor.wait_assigned().await;

    let output = world.outputs["FINANCE"].clone();
    let write_finance = Acl::allow(
        &user.name,
        AclOperation::Write,
        AclResource::Topic(output.clone()),
    );
    {
        let broker = &cluster.broker;
        tokio::task::block_in_place(|| broker.revoke(&[write_finance]));
    }
    let events: Vec<SentEvent> = (0..6)
        .map(|index| SentEvent {
            id: format!("revoked-{index}"),
            tenant: "FINANCE",
            destination: ["FINANCE", "MARKETING"][index % 2].to_owned(),
        })
        .collect();
    world.produce(&events).await;
    let flowing: BTreeSet<String> = events
        .iter()
        .filter(|event| event.destination == "MARKETING")
        .map(|event| event.id.clone())
        .collect();
    let marketing = vec![world.outputs["MARKETING"].clone()];
    wait_for_ids("the writable output", &processor, &flowing, || {
        world.routed_ids(&marketing, false)
    })
    .await;
    let refused_keys: Vec<Vec<u8>> = events
        .iter()
        .filter(|event| event.destination == "FINANCE")
        .map(event_key)
        .collect();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let refused: Vec<Vec<u8>> = world
            .read_all(&world.dead_letter)
            .await
            .into_iter()
            .filter(|record| {
                record
                    .headers
                    .iter()
                    .any(|(name, value)| name == "dlq.reason" && value == b"refused")
            })
            .filter_map(|record| record.key)
            .collect();
        if refused.len() >= refused_keys.len() {
            assert!(
                refused.iter().all(|key| refused_keys.contains(key)),
                "only the unwritable output's events are refused: {refused:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events dead-lettered as refused; log:\n{}",
            refused.len(),
            refused_keys.len(),
            processor.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(world.routed_ids(&[output], false).await.is_empty());
    assert!(processor.is_running(), "the stream goes on");
    let status = processor.stop();
    assert!(status.success(), "clean stop: {status}");
}

async fn a_wrong_password_keeps_start_up_waiting_and_says_why(cluster: &Cluster, user: ScramUser) {
    let world = cluster.world("sec-password").await;
    cluster.broker.grant(&processor_acls(&user, &world));
    let wrong = unique_name("not-the-password");
    let properties = cluster.properties_file(world.dir(), &user, &wrong);
    let config = write_config(cluster, &world, "password-0", &properties, "at-least-once");
    let mut processor = start_processor(&world, "password-0", &config);
    // librdkafka shows the admin client a refused login only as a transport failure, like a
    // broker that is down: start-up waits (docs/OPERATIONS.md, "Broker security") and says
    // in /ready and its log that the credentials may be the cause.
    let deadline = Instant::now() + REFUSED_WITHIN;
    loop {
        let (status, ready) = processor.get_json("/ready").await;
        let reasons = ready["reasons"].to_string();
        if reasons.contains("sasl.password") {
            assert_eq!(status, 503, "not ready: {ready}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready names no credentials within {REFUSED_WITHIN:?}: {ready}; log:\n{}",
            processor.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(processor.is_running(), "start-up waits");
    let log = processor.log();
    assert!(
        log.contains("Waiting for the broker") && log.contains("sasl.password"),
        "the log says why; log:\n{log}"
    );
    assert!(!log.contains(&wrong), "the password is not logged");
    let status = processor.stop();
    assert!(
        status.success(),
        "a stop during start-up is clean: {status}"
    );
}
