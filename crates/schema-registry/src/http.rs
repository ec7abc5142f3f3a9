//! [`HttpSchemaRegistry`]: the Confluent Schema Registry REST API over reqwest.

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

use reqwest::{
    Method, StatusCode, Url,
    header::{ACCEPT, CONTENT_TYPE},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use avro_codec::{RegisteredSchema, RegistryError, SchemaId, SchemaRegistry};

/// Content type of the Confluent Schema Registry API, for requests and `Accept`.
pub const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Longest registry message kept in an error, in bytes.
const MAX_MESSAGE_LEN: usize = 512;

/// A CA certificate (PEM, one or more certificates) to trust in addition to the platform's roots.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaCert {
    /// Read from this file when the client is built.
    Path(PathBuf),
    /// These PEM bytes.
    Pem(Vec<u8>),
}

impl fmt::Debug for CaCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Self::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
        }
    }
}

/// Settings of [`HttpSchemaRegistry`].
#[derive(Clone)]
#[non_exhaustive]
pub struct RegistryClientConfig {
    /// Base URL, e.g. `http://localhost:8081` or `https://user:secret@registry.example/sr`.
    /// Credentials in the URL are used for basic auth unless [`basic_auth`](Self::basic_auth)
    /// is set.
    pub url: String,
    /// Limit of one attempt (connect, send, read the answer).
    pub timeout: Duration,
    /// Attempts after the first one, for timeouts, connection errors, 5xx and 429 answers.
    pub max_retries: u32,
    /// Wait before the first retry; doubles on each further retry, up to 5 s. Each wait is
    /// jittered to between half of that and all of it, so clients do not retry in lockstep.
    pub initial_backoff: Duration,
    /// Basic-auth user and password.
    pub basic_auth: Option<(String, String)>,
    /// Extra CA certificate(s) to trust.
    pub ca_cert_pem: Option<CaCert>,
    /// Accept any server certificate. Only for local test setups.
    pub accept_invalid_certs: bool,
}

impl RegistryClientConfig {
    /// Defaults: 10 s per attempt, 3 retries, 100 ms initial backoff, no auth, platform roots.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_secs(10),
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            basic_auth: None,
            ca_cert_pem: None,
            accept_invalid_certs: false,
        }
    }

    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`max_retries`](Self::max_retries).
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets [`initial_backoff`](Self::initial_backoff).
    #[must_use]
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Sets [`basic_auth`](Self::basic_auth).
    #[must_use]
    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Sets [`ca_cert_pem`](Self::ca_cert_pem).
    #[must_use]
    pub fn with_ca_cert(mut self, ca_cert: CaCert) -> Self {
        self.ca_cert_pem = Some(ca_cert);
        self
    }

    /// Sets [`accept_invalid_certs`](Self::accept_invalid_certs).
    #[must_use]
    pub fn with_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }
}

impl fmt::Debug for RegistryClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClientConfig")
            .field("url", &redact_url(&self.url))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(user, _)| (user, "***")),
            )
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

/// A client of a Confluent-compatible schema registry.
///
/// Each request is retried with jittered exponential backoff on timeouts, connection errors, 5xx and 429
/// answers, at most [`max_retries`](RegistryClientConfig::max_retries) times; 4xx answers are
/// final and mapped to typed [`RegistryError`]s from the body's `error_code`. Cheap to clone
/// (connection pool shared). Wrap it in [`CachedRegistry`](crate::CachedRegistry) for the hot
/// path.
#[derive(Clone)]
pub struct HttpSchemaRegistry {
    client: reqwest::Client,
    base: Arc<Url>,
    basic_auth: Option<Arc<(String, String)>>,
    timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
}

impl fmt::Debug for HttpSchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSchemaRegistry")
            .field("base", &self.base.as_str())
            .field(
                "basic_auth_user",
                &self.basic_auth.as_ref().map(|auth| &auth.0),
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SchemaRequest<'a> {
    schema: &'a str,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
}

#[derive(Deserialize)]
struct SubjectVersionResponse {
    /// Missing in the answers of some registries; the request's subject is used then.
    #[serde(default)]
    subject: String,
    id: u32,
    version: i32,
    schema: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

/// A final non-2xx, non-retryable answer, before it is mapped with the request's context.
struct Refusal {
    request: String,
    status: StatusCode,
    error_code: Option<i64>,
    message: String,
}

enum Failure {
    Refused(Refusal),
    Other(RegistryError),
}

impl HttpSchemaRegistry {
    /// Builds a client; makes no request.
    ///
    /// # Errors
    /// [`RegistryError::Config`] for a URL that is not http(s), an unreadable or invalid CA
    /// certificate, or a TLS setup reqwest refuses.
    pub fn new(config: RegistryClientConfig) -> Result<Self, RegistryError> {
        let config_error = |reason: String| RegistryError::Config { reason };
        let mut base = Url::parse(&config.url).map_err(|err| {
            config_error(format!(
                "schema registry URL `{}` is not a URL: {err}",
                redact_url(&config.url)
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(config_error(format!(
                "schema registry URL `{}` must start with http:// or https://",
                redact_url(&config.url)
            )));
        }
        let url_auth = (!base.username().is_empty()).then(|| {
            (
                percent_decode(base.username()),
                percent_decode(base.password().unwrap_or_default()),
            )
        });
        // Credentials travel in a header, never in URLs that end up in errors and logs.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let basic_auth = config.basic_auth.or(url_auth).map(Arc::new);

        let mut builder =
            reqwest::Client::builder().tls_danger_accept_invalid_certs(config.accept_invalid_certs);
        if let Some(ca_cert) = &config.ca_cert_pem {
            let pem = match ca_cert {
                CaCert::Pem(pem) => pem.clone(),
                CaCert::Path(path) => std::fs::read(path).map_err(|err| {
                    config_error(format!(
                        "cannot read CA certificate file {}: {err}",
                        path.display()
                    ))
                })?,
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|err| config_error(format!("CA certificate is not valid PEM: {err}")))?;
            if certs.is_empty() {
                return Err(config_error(
                    "CA certificate PEM holds no certificate".to_owned(),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|err| config_error(format!("cannot build the HTTP client: {err}")))?;
        Ok(Self {
            client,
            base: Arc::new(base),
            basic_auth,
            timeout: config.timeout,
            max_retries: config.max_retries,
            initial_backoff: config.initial_backoff,
        })
    }

    /// The base URL, without credentials.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = Url::clone(&self.base);
        if let Ok(mut path) = url.path_segments_mut() {
            // Each segment is percent-encoded, so a subject with `/` or spaces stays one segment.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&SchemaRequest<'_>>,
    ) -> Result<T, Failure> {
        let url = self.url(segments);
        let request = format!("{method} {url}");
        let body = body.map(serde_json::to_vec).transpose().map_err(|err| {
            Failure::Other(RegistryError::Config {
                reason: format!("cannot serialize the request body: {err}"),
            })
        })?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .header(ACCEPT, CONTENT_TYPE_V1)
                .timeout(self.timeout);
            if let Some(body) = &body {
                builder = builder
                    .header(CONTENT_TYPE, CONTENT_TYPE_V1)
                    .body(body.clone());
            }
            if let Some(auth) = &self.basic_auth {
                builder = builder.basic_auth(&auth.0, Some(&auth.1));
            }
            let failure = match send(builder).await {
                Ok((status, bytes)) if status.is_success() => {
                    return serde_json::from_slice(&bytes).map_err(|err| {
                        Failure::Other(RegistryError::InvalidResponse {
                            request,
                            reason: format!("body is not the expected JSON: {err}"),
                        })
                    });
                }
                Ok((status, bytes)) => {
                    let (error_code, message) = parse_error_body(&bytes);
                    if !is_retryable(status) {
                        return Err(Failure::Refused(Refusal {
                            request,
                            status,
                            error_code,
                            message,
                        }));
                    }
                    RegistryError::Server {
                        request: request.clone(),
                        status: status.as_u16(),
                        error_code,
                        message,
                        attempts,
                    }
                }
                Err(err) if err.is_builder() => {
                    return Err(Failure::Other(RegistryError::Config {
                        reason: format!("cannot build the request {request}: {err}"),
                    }));
                }
                Err(err) if err.is_timeout() => RegistryError::Timeout {
                    request: request.clone(),
                    timeout: self.timeout,
                    attempts,
                },
                Err(source) => RegistryError::Connect {
                    request: request.clone(),
                    attempts,
                    source: Box::new(source),
                },
            };
            if attempts > self.max_retries {
                return Err(Failure::Other(failure));
            }
            let backoff = self.backoff(attempts);
            tracing::debug!(
                %request,
                attempts,
                backoff_ms = backoff.as_millis(),
                error = %failure,
                "schema registry request failed; retrying"
            );
            tokio::time::sleep(backoff).await;
        }
    }

    /// The wait after failed attempt number `attempts`: "equal jitter" below
    /// [`backoff_ceiling`](Self::backoff_ceiling), so that instances which failed together (a
    /// registry restart) do not retry in lockstep, yet each waits at least half the ceiling.
    fn backoff(&self, attempts: u32) -> Duration {
        equal_jitter(self.backoff_ceiling(attempts), rand::random::<f64>())
    }

    /// `initial_backoff` doubled per earlier failed attempt, at most [`MAX_BACKOFF`].
    fn backoff_ceiling(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        self.initial_backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// Half of `ceiling` plus `unit` (a number in `[0, 1)`, clamped into it) times the other half:
/// always between `ceiling / 2` and `ceiling`.
fn equal_jitter(ceiling: Duration, unit: f64) -> Duration {
    let half = ceiling / 2;
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    half + (ceiling - half).mul_f64(unit)
}

async fn send(builder: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let response = builder.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    Ok((status, bytes.to_vec()))
}

fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn parse_error_body(bytes: &[u8]) -> (Option<i64>, String) {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => (body.error_code, truncate(body.message.unwrap_or_default())),
        Err(_) => (None, truncate(String::from_utf8_lossy(bytes).into_owned())),
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_LEN {
        let mut end = MAX_MESSAGE_LEN;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// Maps a final refusal to a typed error, using the subject the request was about.
fn refusal_error(refusal: Refusal, subject: Option<&str>) -> RegistryError {
    let Refusal {
        request,
        status,
        error_code,
        message,
    } = refusal;
    let subject_owned = || subject.unwrap_or_default().to_owned();
    match (error_code, status.as_u16()) {
        (Some(40401), _) if subject.is_some() => RegistryError::SubjectNotFound {
            subject: subject_owned(),
            message,
        },
        (Some(40402), _) if subject.is_some() => RegistryError::VersionNotFound {
            subject: subject_owned(),
            message,
        },
        (Some(40403), _) => RegistryError::SchemaNotFound { request, message },
        (Some(42201), _) if subject.is_some() => RegistryError::InvalidSchema {
            subject: subject_owned(),
            message,
        },
        (_, 409) if subject.is_some() => RegistryError::Incompatible {
            subject: subject_owned(),
            message,
        },
        (_, status @ (401 | 403)) => RegistryError::Unauthorized {
            request,
            status,
            message,
        },
        (error_code, status) => RegistryError::Rejected {
            request,
            status,
            error_code,
            message,
        },
    }
}

impl Failure {
    fn into_error(self, subject: Option<&str>) -> RegistryError {
        match self {
            Self::Refused(refusal) => refusal_error(refusal, subject),
            Self::Other(err) => err,
        }
    }
}

fn registered(request_subject: &str, body: SubjectVersionResponse) -> RegisteredSchema {
    let subject = if body.subject.is_empty() {
        request_subject.to_owned()
    } else {
        body.subject
    };
    RegisteredSchema {
        subject,
        id: SchemaId(body.id),
        version: body.version,
        schema: body.schema.into(),
    }
}

impl SchemaRegistry for HttpSchemaRegistry {
    async fn register(&self, subject: &str, schema: &str) -> Result<SchemaId, RegistryError> {
        let body = SchemaRequest { schema };
        self.call::<IdResponse>(
            Method::POST,
            &["subjects", subject, "versions"],
            Some(&body),
        )
        .await
        .map(|response| SchemaId(response.id))
        .map_err(|failure| failure.into_error(Some(subject)))
    }

    async fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema, RegistryError> {
        let body = SchemaRequest { schema };
        self.call::<SubjectVersionResponse>(Method::POST, &["subjects", subject], Some(&body))
            .await
            .map(|response| registered(subject, response))
            .map_err(|failure| failure.into_error(Some(subject)))
    }

    async fn schema_by_id(&self, id: SchemaId) -> Result<Arc<str>, RegistryError> {
        let id = id.to_string();
        self.call::<SchemaResponse>(Method::GET, &["schemas", "ids", &id], None)
            .await
            .map(|response| response.schema.into())
            .map_err(|failure| failure.into_error(None))
    }

    async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.call::<SubjectVersionResponse>(
            Method::GET,
            &["subjects", subject, "versions", "latest"],
            None,
        )
        .await
        .map(|response| registered(subject, response))
        .map_err(|failure| failure.into_error(Some(subject)))
    }

    async fn subjects_for_id(&self, id: SchemaId) -> Result<Vec<String>, RegistryError> {
        let id = id.to_string();
        self.call::<Vec<String>>(Method::GET, &["schemas", "ids", &id, "subjects"], None)
            .await
            .map_err(|failure| failure.into_error(None))
    }
}

/// Decodes `%XX` escapes of URL userinfo; invalid escapes stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with any password replaced, for messages.
fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_url() {
        let registry = HttpSchemaRegistry::new(RegistryClientConfig::new(
            "http://us%40er:p%3Ass@host:8081/sr/",
        ))
        .expect("valid config");
        assert_eq!(registry.base_url(), "http://host:8081/sr/");
        let auth = registry.basic_auth.as_deref().expect("auth from URL");
        assert_eq!(auth, &("us@er".to_owned(), "p:ss".to_owned()));
    }

    #[test]
    fn explicit_basic_auth_wins_over_url_credentials() {
        let config = RegistryClientConfig::new("http://a:b@host").with_basic_auth("user", "secret");
        let registry = HttpSchemaRegistry::new(config).expect("valid config");
        let auth = registry.basic_auth.as_deref().expect("auth");
        assert_eq!(auth, &("user".to_owned(), "secret".to_owned()));
    }

    #[test]
    fn subjects_are_percent_encoded_as_one_path_segment() {
        let registry = HttpSchemaRegistry::new(RegistryClientConfig::new("http://host:8081/sr"))
            .expect("valid config");
        let url = registry.url(&["subjects", "a/b c?d", "versions"]);
        assert_eq!(
            url.as_str(),
            "http://host:8081/sr/subjects/a%2Fb%20c%3Fd/versions"
        );
        let registry = HttpSchemaRegistry::new(RegistryClientConfig::new("http://host:8081"))
            .expect("valid config");
        assert_eq!(
            registry.url(&["schemas", "ids", "7"]).as_str(),
            "http://host:8081/schemas/ids/7"
        );
    }

    #[test]
    fn rejects_non_http_urls_and_bad_ca_certificates() {
        for url in ["localhost:8081", "ftp://host", "not a url"] {
            let err = HttpSchemaRegistry::new(RegistryClientConfig::new(url)).expect_err(url);
            assert!(matches!(err, RegistryError::Config { .. }), "{url}: {err}");
        }
        let config = RegistryClientConfig::new("https://host")
            .with_ca_cert(CaCert::Pem(b"not a certificate".to_vec()));
        let err = HttpSchemaRegistry::new(config).expect_err("bad PEM");
        assert!(matches!(err, RegistryError::Config { .. }), "{err}");
        let config = RegistryClientConfig::new("https://host")
            .with_ca_cert(CaCert::Path("/nonexistent/ca.pem".into()));
        let err = HttpSchemaRegistry::new(config).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn debug_output_hides_passwords() {
        let config = RegistryClientConfig::new("http://user:hunter2@host")
            .with_basic_auth("user", "hunter3");
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("hunter3"),
            "{text}"
        );
        let registry = HttpSchemaRegistry::new(config).expect("valid config");
        let text = format!("{registry:?}");
        assert!(!text.contains("hunter"), "{text}");
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_a_cap() {
        let registry = HttpSchemaRegistry::new(
            RegistryClientConfig::new("http://host")
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .expect("valid config");
        assert_eq!(registry.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(registry.backoff_ceiling(2), Duration::from_millis(200));
        assert_eq!(registry.backoff_ceiling(3), Duration::from_millis(400));
        assert_eq!(registry.backoff_ceiling(40), MAX_BACKOFF);
    }

    #[test]
    fn equal_jitter_stays_between_half_the_ceiling_and_the_ceiling() {
        let ceiling = Duration::from_millis(400);
        assert_eq!(equal_jitter(ceiling, 0.0), Duration::from_millis(200));
        assert_eq!(equal_jitter(ceiling, 0.5), Duration::from_millis(300));
        assert!(equal_jitter(ceiling, 0.999_999) <= ceiling);
        // Out-of-range units are clamped, never outside the bounds.
        assert_eq!(equal_jitter(ceiling, -3.0), Duration::from_millis(200));
        assert_eq!(equal_jitter(ceiling, 7.0), ceiling);
        assert_eq!(equal_jitter(ceiling, f64::NAN), Duration::from_millis(200));
        assert_eq!(equal_jitter(Duration::ZERO, 0.7), Duration::ZERO);
    }

    #[test]
    fn backoff_is_jittered_within_its_bounds() {
        let registry = HttpSchemaRegistry::new(
            RegistryClientConfig::new("http://host")
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .expect("valid config");
        for attempts in [1, 2, 3, 10, 40] {
            let ceiling = registry.backoff_ceiling(attempts);
            let waits: Vec<Duration> = (0..200).map(|_| registry.backoff(attempts)).collect();
            for wait in &waits {
                assert!(
                    *wait >= ceiling / 2 && *wait <= ceiling,
                    "attempt {attempts}: {wait:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
            // 200 draws from a continuous range: equal ones would mean no jitter at all.
            assert!(
                waits.iter().any(|wait| *wait != waits[0]),
                "attempt {attempts}: no jitter in {waits:?}"
            );
        }
    }

    #[test]
    fn long_error_messages_are_truncated_on_a_char_boundary() {
        let message = truncate("é".repeat(MAX_MESSAGE_LEN));
        assert!(message.len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
        assert!(message.ends_with('…'));
    }
}
