//! The metrics and probes endpoint: `/metrics`, `/health`, `/ready`.
//!
//! Handlers only read shared state (atomics, the last check results), so a probe answers in
//! microseconds even when the broker or the registry hangs.

use crate::metrics;
use crate::ops::{Ops, Verdict, liveness, readiness};
use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

#[derive(Clone)]
struct Endpoint {
    ops: Arc<Ops>,
    registry: Arc<Registry>,
}

/// The running server.
#[derive(Debug)]
pub struct Server {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops accepting connections and lets open requests finish, for a second at most (a
    /// scraper's connection must not hold the exit back).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Binds `listen` (failing at once if the address is taken) and serves in a background task.
pub async fn start(listen: SocketAddr, ops: Arc<Ops>) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen} for metrics and probes; set http.listen (--http-listen) to a free address, or http.enabled = false"
            )
        })?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let registry = Arc::new(metrics::registry(Arc::clone(&ops)));
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(Endpoint { ops, registry });
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            error!(%error, "Metrics and probes endpoint stopped with an error.");
        }
    });
    info!(listen = %bound, "Serving metrics and probes (/metrics, /health, /ready).");
    Ok(Server { stop, task })
}

async fn scrape(State(endpoint): State<Endpoint>) -> Response {
    match metrics::encode(&endpoint.registry) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed",
        )
            .into_response(),
    }
}

async fn health(State(endpoint): State<Endpoint>) -> Response {
    let observation = endpoint.ops.observe();
    let verdict = liveness(&observation, endpoint.ops.limits);
    answer(
        &verdict,
        if verdict.ok { "alive" } else { "stalled" },
        json!({ "loop_silence_ms": observation.loop_silence_ms() }),
    )
}

async fn ready(State(endpoint): State<Endpoint>) -> Response {
    let ops = &endpoint.ops;
    let verdict = readiness(&ops.observe(), ops.limits);
    answer(
        &verdict,
        if verdict.ok { "ready" } else { "not-ready" },
        json!({
            "assigned_partitions": ops.stats.assigned_partitions.load(Relaxed),
            "routing_version": format!("{:016x}", ops.stats.routing_version.load(Relaxed)),
        }),
    )
}

/// 200 or 503 with `{"status": …, "reasons": […], …details}`.
fn answer(verdict: &Verdict, status: &str, details: serde_json::Value) -> Response {
    let mut body = json!({ "status": status, "reasons": verdict.reasons });
    if let (Some(body), serde_json::Value::Object(details)) = (body.as_object_mut(), details) {
        body.extend(details);
    }
    let code = if verdict.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}
