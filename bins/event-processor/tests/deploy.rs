//! `deploy/` checked against the real binary: the container image's command line and
//! environment, the compose file and the Kubernetes manifests configure a processor the real
//! settings loader accepts (`--check-config`), their probes and ports are the ones the processor
//! serves, and every metric the dashboard and the alert rules query exists in a running
//! processor's `/metrics`.
//!
//! No container runs here (the machine has no Docker engine): a container's file system is
//! replaced by the repository files the Dockerfile copies and the compose file and manifests
//! mount, and nothing else changes. The schemas of the compose file and the manifests are
//! checked by `.ci/run` (`deploy/checks/validate.sh`).

mod support;

use serde::Deserialize;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{Scrape, World};
use test_support::require_stack;

const BINARY: &str = env!("CARGO_BIN_EXE_event-processor");
/// Labels Prometheus (or the Kubernetes service discovery) adds to every scraped series.
const TARGET_LABELS: [&str; 5] = ["namespace", "pod", "job", "instance", "le"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    let path = repo().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn yaml_documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value =
                Value::deserialize(document).unwrap_or_else(|error| panic!("{path}: {error}"));
            // `<<: *anchor` merge keys, as compose applies them.
            value
                .apply_merge()
                .unwrap_or_else(|error| panic!("{path}: {error}"));
            value
        })
        .filter(|document| !document.is_null())
        .collect()
}

trait ValueExt {
    fn at(&self, path: &str) -> &Value;
    fn text(&self) -> String;
    fn list(&self) -> Vec<&Value>;
}

impl ValueExt for Value {
    /// `a.b.0.c`: mapping keys and sequence indexes; panics naming the path when absent.
    fn at(&self, path: &str) -> &Value {
        let mut value = self;
        for key in path.split('.') {
            value = match (value, key.parse::<usize>()) {
                (Value::Sequence(items), Ok(index)) => items.get(index),
                _ => value.get(key),
            }
            .unwrap_or_else(|| panic!("`{path}` missing (at `{key}`) in {value:?}"));
        }
        value
    }

    fn text(&self) -> String {
        match self {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn list(&self) -> Vec<&Value> {
        self.as_sequence()
            .unwrap_or_else(|| panic!("not a list: {self:?}"))
            .iter()
            .collect()
    }
}

/// The instructions of deploy/Dockerfile the runtime stage ends with.
#[derive(Debug)]
struct Image {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: BTreeMap<String, String>,
    /// Container path → repository path, from the runtime stage's `COPY <repo> <container>`.
    copies: BTreeMap<String, String>,
    healthcheck: Vec<String>,
    exposed: u16,
    user: String,
}

fn image() -> Image {
    let text = read("deploy/Dockerfile").replace("\\\n", " ");
    let runtime = text
        .split("\nFROM ")
        .last()
        .expect("a runtime stage")
        .to_owned();
    let json_list = |line: &str| -> Vec<String> {
        let start = line.find('[').expect("exec form [..]");
        serde_json::from_str(&line[start..]).unwrap_or_else(|error| panic!("{line}: {error}"))
    };
    let mut image = Image {
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        env: BTreeMap::new(),
        copies: BTreeMap::new(),
        healthcheck: Vec::new(),
        exposed: 0,
        user: String::new(),
    };
    for line in runtime.lines().map(str::trim) {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instruction {
            "ENTRYPOINT" => image.entrypoint = json_list(rest),
            "CMD" => image.cmd = json_list(rest),
            "HEALTHCHECK" => image.healthcheck = json_list(rest),
            "EXPOSE" => image.exposed = rest.trim().parse().expect("EXPOSE port"),
            "USER" => image.user = rest.trim().to_owned(),
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (key, value) = pair.split_once('=').expect("ENV key=value");
                    image.env.insert(key.to_owned(), value.to_owned());
                }
            }
            "COPY" if !rest.starts_with("--from") => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(parts.len(), 2, "COPY <src> <dest>: {line}");
                image
                    .copies
                    .insert(parts[1].to_owned(), parts[0].to_owned());
            }
            _ => {}
        }
    }
    image
}

/// A container's file system for a run outside it: each container path (a file or a directory)
/// and the host file or directory standing in for it.
#[derive(Debug, Default)]
struct Files {
    mounts: BTreeMap<String, PathBuf>,
}

impl Files {
    fn add(&mut self, container: &str, host: PathBuf) {
        self.mounts.insert(container.to_owned(), host);
    }

    /// `text` with every container path that is mounted replaced by its host path (longest first).
    fn rewrite(&self, text: &str) -> String {
        let mut mounts: Vec<(&String, &PathBuf)> = self.mounts.iter().collect();
        mounts.sort_by_key(|(container, _)| std::cmp::Reverse(container.len()));
        let mut text = text.to_owned();
        for (container, host) in mounts {
            text = text.replace(container.as_str(), &host.to_string_lossy());
        }
        text
    }

    /// Config files the command line names are rewritten too (they name the routing file).
    fn command_line(&self, args: &[String], scratch: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut next_is_config = false;
        for arg in args {
            if next_is_config {
                let host = PathBuf::from(self.rewrite(arg));
                let text = std::fs::read_to_string(&host)
                    .unwrap_or_else(|error| panic!("config {arg} ({}): {error}", host.display()));
                let copy = scratch.join("processor.toml");
                std::fs::write(&copy, self.rewrite(&text)).expect("config copy");
                out.push(copy.to_string_lossy().into_owned());
                next_is_config = false;
                continue;
            }
            next_is_config = arg == "--config" || arg == "-c";
            out.push(self.rewrite(arg));
        }
        out
    }
}

/// Runs the binary as a container would: only `env` in its environment.
fn run_with(args: &[String], env: &BTreeMap<String, String>) -> Output {
    Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("the processor runs")
}

/// `key = value` lines of `--check-config`, after asserting it accepted the configuration.
fn check_config(
    what: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut args = args.to_vec();
    args.push("--check-config".to_owned());
    let output = run_with(&args, env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what}: the settings loader refused it ({}):\nargs {args:?}\nenv {env:?}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("configuration valid"),
        "{what}: {stdout}"
    );
    stdout
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn port_of(listen: &str) -> u16 {
    listen
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {listen}"))
}

/// `http://host:port/path` → (port, path).
fn url_port_path(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (port_of(authority), path.to_owned())
}

#[test]
fn container_image_runs_the_processor_with_its_config_and_probes() {
    let image = image();
    assert_eq!(image.entrypoint, ["event-processor"]);
    assert_eq!(image.user, "10001:10001", "non-root");
    let scratch = test_support::scratch_dir("deploy-image");
    let mut files = Files::default();
    for (container, host) in &image.copies {
        files.add(container, repo().join(host));
    }
    let args = files.command_line(&image.cmd, &scratch);
    let settings = check_config("the image's CMD and ENV", &args, &image.env);
    let listen = &settings["http.listen"];
    assert!(
        listen.starts_with("0.0.0.0:"),
        "listens on every interface: {listen}"
    );
    assert_eq!(port_of(listen), image.exposed, "EXPOSE is the listen port");
    assert_eq!(settings["log.json"], "true");
    assert_eq!(
        settings["kafka.properties"], "client.id",
        "no security placeholders active"
    );
    // HEALTHCHECK probes this binary's /health on the listen port.
    assert_eq!(image.healthcheck[..2], ["event-processor", "--probe"]);
    let (port, path) = url_port_path(&image.healthcheck[2]);
    assert_eq!((port, path.as_str()), (image.exposed, "/health"));
}

#[test]
fn compose_processor_is_accepted_by_the_settings_loader() {
    let compose = &yaml_documents("deploy/compose.yaml")[0];
    let image = image();
    let service = compose.at("services.processor");
    assert_eq!(service.at("build.dockerfile").text(), "deploy/Dockerfile");
    assert_eq!(service.at("build.context").text(), "..");
    let scratch = test_support::scratch_dir("deploy-compose");
    let mut files = Files::default();
    for (container, host) in &image.copies {
        files.add(container, repo().join(host));
    }
    for volume in service.at("volumes").list() {
        let volume = volume.text();
        let parts: Vec<&str> = volume.split(':').collect();
        files.add(parts[1], repo().join("deploy").join(parts[0]));
    }
    let mut env = image.env.clone();
    for (key, value) in service.at("environment").as_mapping().expect("a mapping") {
        env.insert(key.text(), value.text());
    }
    assert!(service.get("command").is_none(), "the image's CMD runs");
    let args = files.command_line(&image.cmd, &scratch);
    let settings = check_config("compose service `processor`", &args, &env);
    assert_eq!(settings["kafka.bootstrap_servers"], "kafka:9092");
    assert_eq!(settings["registry.url"], "http://schema-registry:8081");
    assert_eq!(settings["processor_id"], "compose-processor-1");
    let listen_port = port_of(&settings["http.listen"]);
    assert_eq!(
        service.at("ports.0").text(),
        format!("{listen_port}:{listen_port}")
    );
    // Its health check asks /ready of this binary, on the listen port.
    let test: Vec<String> = service
        .at("healthcheck.test")
        .list()
        .iter()
        .map(|value| value.text())
        .collect();
    assert_eq!(test[..3], ["CMD", "event-processor", "--probe"]);
    assert_eq!(url_port_path(&test[3]), (listen_port, "/ready".to_owned()));
    // The grace period outlasts the drain.
    let drain_ms: u64 = settings["pipeline.drain_timeout_ms"].parse().expect("ms");
    let grace = service.at("stop_grace_period").text();
    let grace_s: u64 = grace.trim_end_matches('s').parse().expect("seconds");
    assert!(
        grace_s * 1000 > drain_ms,
        "stop_grace_period {grace} vs drain {drain_ms} ms"
    );
    // Prometheus scrapes that port and path.
    let prometheus = &yaml_documents("deploy/prometheus/prometheus.yml")[0];
    let job = prometheus.at("scrape_configs.0");
    assert_eq!(job.at("metrics_path").text(), "/metrics");
    assert_eq!(
        job.at("static_configs.0.targets.0").text(),
        format!("processor:{listen_port}")
    );
    // Its rules are the PrometheusRule's.
    let rules = &yaml_documents("deploy/prometheus/rules.yml")[0];
    let rule_documents = yaml_documents("deploy/k8s/prometheusrule.yaml");
    let rule = find_kind(&rule_documents, "PrometheusRule");
    assert_eq!(rules.at("groups"), rule.at("spec.groups"));
    // Every dependency waits on a health check or a completed job, never on a sleep.
    for (name, service) in compose.at("services").as_mapping().expect("services") {
        if let Some(depends) = service.get("depends_on") {
            for (_, condition) in depends.as_mapping().expect("long depends_on form") {
                let condition = condition.at("condition").text();
                assert!(
                    [
                        "service_healthy",
                        "service_completed_successfully",
                        "service_started"
                    ]
                    .contains(&condition.as_str()),
                    "{}: {condition}",
                    name.text()
                );
            }
        }
    }
}

/// The flags the compose file gives the sample producer and consumer exist in their `--help`.
#[test]
fn compose_tools_use_flags_the_tools_have() {
    let compose = &yaml_documents("deploy/compose.yaml")[0];
    // The workspace's other binaries, beside this one in the target directory.
    let dir = Path::new(BINARY).parent().expect("target dir");
    for (service, binary) in [
        ("producer", dir.join("event-producer")),
        ("consumer", dir.join("event-consumer")),
    ] {
        let binary = binary.to_string_lossy().into_owned();
        let service = compose.at(&format!("services.{service}"));
        let entry = service.at("entrypoint.0").text();
        assert!(binary.ends_with(&entry), "{binary} vs {entry}");
        let Ok(help) = Command::new(&binary).arg("--help").output() else {
            // Built by `cargo build --workspace` (as `cargo xtask test` does), not by this crate.
            eprintln!("SKIPPED flag check of {binary}: not built");
            continue;
        };
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in service.at("command").list() {
            let flag = flag.text();
            if flag.starts_with("--") {
                assert!(
                    help.contains(&format!("{flag} ")),
                    "{entry} has no {flag}:\n{help}"
                );
            }
        }
    }
}

fn find_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document.get("kind").map(ValueExt::text).as_deref() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn kubernetes_deployment_is_accepted_by_the_settings_loader() {
    let documents: Vec<Value> = [
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/configmap.yaml",
        "deploy/k8s/secret.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/podmonitor.yaml",
    ]
    .iter()
    .flat_map(|path| yaml_documents(path))
    .collect();
    let deployment = find_kind(&documents, "Deployment");
    let pod = deployment.at("spec.template.spec");
    let container = pod.at("containers.0");
    let scratch = test_support::scratch_dir("deploy-k8s");

    // The ConfigMap volumes, written out where they are mounted.
    let config_maps: BTreeMap<String, &Value> = documents
        .iter()
        .filter(|document| document.at("kind").text() == "ConfigMap")
        .map(|document| (document.at("metadata.name").text(), document))
        .collect();
    let volumes: BTreeMap<String, &Value> = pod
        .at("volumes")
        .list()
        .into_iter()
        .map(|volume| (volume.at("name").text(), volume))
        .collect();
    // The Secret volumes too: the credentials are files, not flags.
    let secrets: BTreeMap<String, &Value> = documents
        .iter()
        .filter(|document| document.at("kind").text() == "Secret")
        .map(|document| (document.at("metadata.name").text(), document))
        .collect();
    let mut files = Files::default();
    for mount in container.at("volumeMounts").list() {
        let volume = volumes[&mount.at("name").text()];
        let contents: Vec<(String, String)> = match (volume.get("configMap"), volume.get("secret"))
        {
            (Some(config_map), _) => config_maps[&config_map.at("name").text()]
                .at("data")
                .as_mapping()
                .expect("data")
                .iter()
                .map(|(file, content)| (file.text(), content.text()))
                .collect(),
            (None, Some(secret)) => {
                let data = secrets[&secret.at("secretName").text()].at("stringData");
                let entry = |key: &str| {
                    data.get(key)
                        .unwrap_or_else(|| panic!("the Secret has no `{key}`"))
                        .text()
                };
                match secret.get("items") {
                    Some(items) => items
                        .list()
                        .into_iter()
                        .map(|item| (item.at("path").text(), entry(&item.at("key").text())))
                        .collect(),
                    None => data
                        .as_mapping()
                        .expect("stringData")
                        .iter()
                        .map(|(key, content)| (key.text(), content.text()))
                        .collect(),
                }
            }
            _ => continue,
        };
        assert!(
            mount.get("subPath").is_none(),
            "a subPath mount is never updated"
        );
        let dir = scratch.join(mount.at("name").text());
        std::fs::create_dir_all(&dir).expect("dir");
        for (file, content) in contents {
            std::fs::write(dir.join(file), content).expect("file");
        }
        files.add(&mount.at("mountPath").text(), dir);
    }
    assert_eq!(
        config_maps["event-processor-routing"]
            .at("data")
            .get("routing.toml")
            .map(ValueExt::text),
        Some(read("deploy/routing.toml")),
        "the routing ConfigMap is deploy/routing.toml"
    );

    // The environment, with the Secret's values and the pod's name.
    let secret = find_kind(&documents, "Secret");
    let mut env = image().env;
    for variable in container.at("env").list() {
        let name = variable.at("name").text();
        let value = match (variable.get("value"), variable.get("valueFrom")) {
            (Some(value), _) => value.text(),
            (None, Some(from)) => match (from.get("secretKeyRef"), from.get("fieldRef")) {
                (Some(reference), _) => {
                    assert_eq!(
                        reference.at("name").text(),
                        secret.at("metadata.name").text()
                    );
                    secret
                        .at(&format!("stringData.{}", reference.at("key").text()))
                        .text()
                }
                (None, Some(field)) => {
                    assert_eq!(field.at("fieldPath").text(), "metadata.name");
                    "event-processor-7d9f8-abcde".to_owned()
                }
                _ => panic!("{name}: unexpected valueFrom"),
            },
            _ => panic!("{name}: no value"),
        };
        env.insert(name, value);
    }
    // Kubernetes expands $(VAR) in args from the container's env.
    let args: Vec<String> = container
        .at("args")
        .list()
        .iter()
        .map(|arg| {
            let mut arg = arg.text();
            for (name, value) in &env {
                arg = arg.replace(&format!("$({name})"), value);
            }
            assert!(!arg.contains("$("), "unexpanded {arg}");
            arg
        })
        .collect();
    for arg in &args {
        assert!(
            !arg.contains("sasl.") && !arg.contains("password"),
            "no credentials on the command line (`ps` shows it): {arg}"
        );
    }
    let args = files.command_line(&args, &scratch);
    let settings = check_config("the Kubernetes Deployment", &args, &env);
    assert_eq!(settings["processor_id"], "event-processor-7d9f8-abcde");
    assert_eq!(settings["registry.basic_auth"], "true");
    for property in [
        "sasl.mechanism",
        "sasl.password",
        "sasl.username",
        "security.protocol",
    ] {
        assert!(
            settings["kafka.properties"]
                .split(',')
                .any(|name| name == property),
            "{property} in {}",
            settings["kafka.properties"]
        );
    }
    assert_eq!(
        settings["routing.file"],
        files.rewrite("/etc/event-processor/routing/routing.toml"),
        "the routing file is the reloadable ConfigMap's"
    );

    // Probes and ports are the processor's.
    let listen_port = port_of(&settings["http.listen"]);
    let port = container.at("ports.0");
    assert_eq!(port.at("containerPort").text(), listen_port.to_string());
    let port_name = port.at("name").text();
    for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
        assert_eq!(container.at(&format!("{probe}.httpGet.path")).text(), path);
        assert_eq!(
            container.at(&format!("{probe}.httpGet.port")).text(),
            port_name
        );
    }
    let service = find_kind(&documents, "Service");
    assert_eq!(service.at("spec.ports.0.targetPort").text(), port_name);
    let monitor = find_kind(&documents, "PodMonitor");
    assert_eq!(
        monitor.at("spec.podMetricsEndpoints.0.port").text(),
        port_name
    );
    assert_eq!(
        monitor.at("spec.podMetricsEndpoints.0.path").text(),
        "/metrics"
    );
    let annotations = deployment.at("spec.template.metadata.annotations");
    assert_eq!(
        annotations.get("prometheus.io/port").map(ValueExt::text),
        Some(listen_port.to_string())
    );

    // Stops get longer than the drain; the pod runs restricted.
    let drain_ms: u64 = settings["pipeline.drain_timeout_ms"].parse().expect("ms");
    let grace: u64 = pod
        .at("terminationGracePeriodSeconds")
        .text()
        .parse()
        .expect("s");
    assert!(
        grace * 1000 > drain_ms + 5_000,
        "grace {grace} s vs drain {drain_ms} ms"
    );
    let security = container.at("securityContext");
    assert_eq!(security.at("readOnlyRootFilesystem"), &Value::Bool(true));
    assert_eq!(security.at("allowPrivilegeEscalation"), &Value::Bool(false));
    assert_eq!(security.at("capabilities.drop.0").text(), "ALL");
    assert_eq!(security.at("seccompProfile.type").text(), "RuntimeDefault");
    assert_eq!(pod.at("securityContext.runAsNonRoot"), &Value::Bool(true));
    assert_eq!(
        format!(
            "{}:{}",
            pod.at("securityContext.runAsUser").text(),
            pod.at("securityContext.runAsGroup").text()
        ),
        image().user,
        "the image's user"
    );
}

/// Every `event_processor_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("event_processor_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every PromQL expression of the dashboard and the alert rules, with where it comes from.
fn queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(repo().join("deploy/grafana")).expect("deploy/grafana") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("dashboard");
        let dashboard: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let mut stack = vec![&dashboard];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        match (key.as_str(), value) {
                            // Variable queries too; not the data source variable's plugin name.
                            ("expr" | "query" | "definition", serde_json::Value::String(expr))
                                if expr.contains('(') || expr.contains('{') =>
                            {
                                queries.push((path.display().to_string(), expr.clone()));
                            }
                            _ => stack.push(value),
                        }
                    }
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
    let rule = find_kind(
        &yaml_documents("deploy/k8s/prometheusrule.yaml"),
        "PrometheusRule",
    )
    .clone();
    for group in rule.at("spec.groups").list() {
        for rule in group.at("rules").list() {
            queries.push((
                format!("alert {}", rule.at("alert").text()),
                rule.at("expr").text(),
            ));
        }
    }
    queries
}

/// Label names in `by (…)` / `without (…)` and matchers `{name="…"}` of `expr`.
fn label_uses(expr: &str) -> Vec<(String, Option<Vec<String>>)> {
    let mut uses = Vec::new();
    for keyword in ["by (", "without ("] {
        for (index, _) in expr.match_indices(keyword) {
            let inner = &expr[index + keyword.len()..];
            let inner = &inner[..inner.find(')').expect("closing )")];
            uses.extend(
                inner
                    .split(',')
                    .map(|label| (label.trim().to_owned(), None)),
            );
        }
    }
    for (index, _) in expr.match_indices('{') {
        let inner = &expr[index + 1..];
        let Some(end) = inner.find('}') else { continue };
        for matcher in inner[..end].split(',') {
            let Some((name, value)) = matcher.split_once('=') else {
                continue;
            };
            let name = name.trim().trim_end_matches(['!', '=', '~']).trim();
            let value = value.trim_start_matches('~').trim().trim_matches('"');
            // Literal alternatives only (`a|b`); template variables and patterns are not values.
            let values = (!value.contains(['$', '.', '*', '+', '(']))
                .then(|| value.split('|').map(str::to_owned).collect());
            uses.push((name.to_owned(), values));
        }
    }
    uses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_query_metrics_the_processor_exports() {
    let stack = require_stack!();
    let queries = queries();
    assert!(queries.len() > 20, "dashboard and rules: {queries:?}");
    let world = World::new(stack, "deploy-metrics", 3).await;
    let processor = world.start_processor("processor-deploy-metrics");
    processor.wait_assigned().await;
    world.produce(&world.plan_events("deploy", 30)).await;
    // Every family has samples once records were routed, committed and the lag checked.
    let scrape = processor
        .wait_for_metrics(
            "routed, committed and lag reported",
            Duration::from_secs(60),
            |scrape| {
                scrape.value("event_processor_end_to_end_latency_seconds_count", &[]) >= 1.0
                    && scrape.value("event_processor_offset_commits_total", &[("result", "ok")])
                        >= 1.0
                    && !scrape.all("event_processor_consumer_lag").is_empty()
            },
        )
        .await;
    let exported = exported_labels(&scrape);
    let mut problems = Vec::new();
    for (origin, expr) in &queries {
        let names = metric_names(expr);
        for name in &names {
            if !exported.contains_key(name) {
                problems.push(format!("{origin}: `{name}` is not exported (in `{expr}`)"));
            }
        }
        let mut labels: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for name in &names {
            for (label, values) in exported.get(name).into_iter().flatten() {
                labels
                    .entry(label)
                    .or_default()
                    .extend(values.iter().cloned());
            }
        }
        if names.is_empty() && !expr.contains("up{") {
            problems.push(format!("{origin}: no event_processor_ metric in `{expr}`"));
        }
        for (label, values) in label_uses(expr) {
            if TARGET_LABELS.contains(&label.as_str()) || names.is_empty() {
                continue;
            }
            match labels.get(label.as_str()) {
                None => problems.push(format!("{origin}: label `{label}` not on {names:?}")),
                Some(seen) => {
                    for value in values.into_iter().flatten() {
                        if !seen.contains(&value) {
                            problems.push(format!(
                                "{origin}: {label}=\"{value}\" never exported (seen {seen:?})"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nscrape:\n{}",
        problems.join("\n"),
        scrape.text
    );

    // The probe paths of the manifests are served; the version carries the commit.
    for path in ["/health", "/ready", "/metrics"] {
        let (status, body) = processor.get(path).await;
        assert!(status == 200 || status == 503, "{path}: {status} {body}");
    }
    let version = Command::new(BINARY)
        .arg("--version")
        .output()
        .expect("--version");
    let version = String::from_utf8_lossy(&version.stdout);
    let commit = version
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no commit in `{version}`"));
    assert!(!commit.is_empty());
    assert!(
        scrape
            .all("event_processor_build_info")
            .iter()
            .any(|(series, value)| *value == 1.0
                && series.ends_with(&format!(",commit=\"{commit}\"}}"))),
        "build_info with commit {commit}: {:?}",
        scrape.all("event_processor_build_info")
    );
    assert_eq!(processor.stop().code(), Some(0));
}

/// Sample name → label name → values seen.
fn exported_labels(scrape: &Scrape) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut exported: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for series in scrape.samples.keys() {
        let (name, labels) = series.split_once('{').unwrap_or((series.as_str(), ""));
        let entry = exported.entry(name.to_owned()).or_default();
        for pair in labels.trim_end_matches('}').split("\",") {
            if let Some((label, value)) = pair.split_once("=\"") {
                entry
                    .entry(label.to_owned())
                    .or_default()
                    .insert(value.trim_end_matches('"').to_owned());
            }
        }
    }
    exported
}

/// The image's ENTRYPOINT, CMD and ENV, run outside a container against the test stack: the
/// container's files are the repository's it copies, and the environment a deployment gives it
/// points it at the stack. Only the listen port changes (9464 may be taken on this machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_entrypoint_turns_ready_against_the_stack() {
    let stack = require_stack!();
    let world = World::new(stack.clone(), "deploy-entrypoint", 3).await;
    let image = image();
    let scratch = test_support::scratch_dir("deploy-entrypoint");
    let mut files = Files::default();
    for (container, host) in &image.copies {
        files.add(container, repo().join(host));
    }
    let mut args = image.entrypoint[1..].to_vec();
    args.extend(files.command_line(&image.cmd, &scratch));

    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut env = image.env.clone();
    let listen = env["EVENT_PROCESSOR__HTTP__LISTEN"]
        .replace(&format!(":{}", image.exposed), &format!(":{free_port}"));
    env.insert("EVENT_PROCESSOR__HTTP__LISTEN".to_owned(), listen);
    for (key, value) in [
        (
            "EVENT_PROCESSOR__PROCESSOR_ID",
            "deploy-entrypoint".to_owned(),
        ),
        (
            "EVENT_PROCESSOR__KAFKA__BOOTSTRAP_SERVERS",
            stack.kafka_bootstrap.clone(),
        ),
        ("EVENT_PROCESSOR__REGISTRY__URL", stack.registry_url.clone()),
        ("EVENT_PROCESSOR__KAFKA__INPUT_TOPIC", world.input.clone()),
        (
            "EVENT_PROCESSOR__KAFKA__DEAD_LETTER_TOPIC",
            world.dead_letter.clone(),
        ),
        ("EVENT_PROCESSOR__KAFKA__GROUP_ID", world.group.clone()),
    ] {
        env.insert(key.to_owned(), value);
    }
    let log_path = scratch.join("processor.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(BINARY)
        .args(&args)
        .env_clear()
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the processor starts");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The image's HEALTHCHECK, and the same probe on /ready, until both answer 200.
    let probe = |path: &str| {
        let mut command = image.healthcheck.clone();
        command[2] = format!("http://127.0.0.1:{free_port}{path}");
        Command::new(BINARY)
            .args(&command[1..])
            .env_clear()
            .output()
            .expect("probe runs")
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the processor exited with {status}; log:\n{}", log());
        }
        let (health, ready) = (probe("/health"), probe("/ready"));
        if health.status.success() && ready.status.success() {
            let body = String::from_utf8_lossy(&ready.stdout);
            assert!(body.contains("\"status\":\"ready\""), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready not 200 within 90 s: {}{}; log:\n{}",
            String::from_utf8_lossy(&ready.stdout),
            String::from_utf8_lossy(&ready.stderr),
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // JSON logs, as the image's ENV asks.
    assert!(
        log()
            .lines()
            .any(|line| line.starts_with('{') && line.contains("Event processor starting")),
        "JSON log lines:\n{}",
        log()
    );
    // A stop (SIGTERM, as `docker stop` and the kubelet send) exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exit.code(), Some(0), "log:\n{}", log());
}
