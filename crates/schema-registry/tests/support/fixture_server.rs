//! A tiny HTTP/1.1 server on loopback answering canned Confluent Schema Registry responses from
//! `tests/fixtures/*.json`, in order, and recording every request that differs from the fixture.

#![allow(unreachable_pub)]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value as Json;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

#[derive(Debug)]
struct Exchange {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Json>,
    status: u16,
    response: Json,
    delay: Duration,
}

#[derive(Debug, Default)]
struct State {
    pending: VecDeque<Exchange>,
    requests: usize,
    problems: Vec<String>,
}

/// A running fixture server; stops with the test's runtime.
#[derive(Debug)]
pub struct FixtureServer {
    url: String,
    state: Arc<Mutex<State>>,
}

/// Placeholders usable in fixture request bodies, replaced by the embedded schemas.
fn substitute(text: &str) -> String {
    let quoted = |schema: &str| {
        let json = serde_json::to_string(schema).expect("string serializes");
        json[1..json.len() - 1].to_owned()
    };
    text.replace(
        "${PRODUCER_TO_PROCESSOR_SCHEMA}",
        &quoted(avro_codec::PRODUCER_TO_PROCESSOR_SCHEMA),
    )
    .replace(
        "${PROCESSOR_TO_CONSUMER_SCHEMA}",
        &quoted(avro_codec::PROCESSOR_TO_CONSUMER_SCHEMA),
    )
}

fn load(name: &str) -> VecDeque<Exchange> {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let fixture: Json = serde_json::from_str(&substitute(&text)).expect("fixture is JSON");
    let exchanges = fixture["exchanges"]
        .as_array()
        .expect("fixture has exchanges");
    exchanges
        .iter()
        .map(|exchange| {
            let request = &exchange["request"];
            let response = &exchange["response"];
            Exchange {
                method: request["method"].as_str().expect("method").to_owned(),
                path: request["path"].as_str().expect("path").to_owned(),
                headers: request["headers"]
                    .as_object()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().expect("header").to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                body: request.get("body").cloned(),
                status: u16::try_from(response["status"].as_u64().expect("status"))
                    .expect("status fits"),
                response: response["body"].clone(),
                delay: Duration::from_millis(response["delay_ms"].as_u64().unwrap_or(0)),
            }
        })
        .collect()
}

impl FixtureServer {
    /// Serves `tests/fixtures/{name}.json` on 127.0.0.1 with an ephemeral port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let state = Arc::new(Mutex::new(State {
            pending: load(name),
            ..State::default()
        }));
        let accept_state = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, Arc::clone(&accept_state)));
            }
        });
        Self { url, state }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Base URL with credentials in the userinfo.
    pub fn url_with_userinfo(&self, userinfo: &str) -> String {
        self.url
            .replacen("http://", &format!("http://{userinfo}@"), 1)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.lock().expect("lock").requests
    }

    /// Asserts every request matched its fixture and every fixture exchange was used.
    pub fn assert_all_served(&self) {
        let state = self.state.lock().expect("lock");
        assert!(
            state.problems.is_empty(),
            "requests differ from fixtures: {:#?}",
            state.problems
        );
        assert!(
            state.pending.is_empty(),
            "fixture exchanges not requested: {:#?}",
            state.pending
        );
    }
}

async fn handle(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).await.is_err() {
        return;
    }

    let exchange = {
        let mut state = state.lock().expect("lock");
        state.requests += 1;
        let exchange = state.pending.pop_front();
        match &exchange {
            None => state
                .problems
                .push(format!("unexpected request {method} {path}")),
            Some(expected) => {
                let problems = differences(expected, &method, &path, &headers, &body);
                state.problems.extend(problems);
            }
        }
        exchange
    };
    let (status, response, delay) = match exchange {
        Some(exchange) => (exchange.status, exchange.response, exchange.delay),
        None => (
            418,
            serde_json::json!({"error_code": 41800, "message": "no fixture exchange left"}),
            Duration::ZERO,
        ),
    };
    tokio::time::sleep(delay).await;
    let body = match response {
        Json::String(raw) => raw,
        json => json.to_string(),
    };
    let reply = format!(
        "HTTP/1.1 {status} Fixture\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = reader.into_inner();
    // The client may have given up already (timeout tests); that is fine.
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn differences(
    expected: &Exchange,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<String> {
    let mut problems = Vec::new();
    if expected.method != method || expected.path != path {
        problems.push(format!(
            "expected {} {}, got {method} {path}",
            expected.method, expected.path
        ));
    }
    for (name, value) in &expected.headers {
        let actual = headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        if actual != Some(value.as_str()) {
            problems.push(format!(
                "{method} {path}: header {name} is {actual:?}, expected {value:?}"
            ));
        }
    }
    if let Some(expected_body) = &expected.body {
        match serde_json::from_slice::<Json>(body) {
            Ok(actual) if actual == *expected_body => {}
            Ok(actual) => problems.push(format!(
                "{method} {path}: body {actual}, expected {expected_body}"
            )),
            Err(err) => problems.push(format!("{method} {path}: body is not JSON: {err}")),
        }
    }
    problems
}
