//! The HTTP surface: Confluent's REST paths, bodies, content types and error codes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::compatibility::CompatibilityLevel;
use crate::http_error::ApiError;
use crate::store::{CandidateSchema, RegistryState, VersionRecord, VersionSelector};

/// The content type of every response, as Confluent sends it.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request content types Confluent accepts; a missing one is tolerated too.
const ACCEPTED_CONTENT_TYPES: [&str; 4] = [
    CONTENT_TYPE,
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// The registry's HTTP API over `state`, for embedding in another server or serving yourself.
pub fn router(state: RegistryState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/subjects", get(list_subjects))
        .route(
            "/subjects/{subject}",
            axum::routing::post(lookup_schema).delete(delete_subject),
        )
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register_schema),
        )
        .route("/subjects/{subject}/versions/{version}", get(get_version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route("/schemas/ids/{id}", get(get_schema_by_id))
        .route("/schemas/ids/{id}/schema", get(get_raw_schema_by_id))
        .route("/schemas/types", get(schema_types))
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serializes `body` with the registry content type.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw_response(status, bytes),
        Err(error) => raw_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(r#"{{"error_code":50001,"message":"cannot serialize response: {error}"}}"#)
                .into_bytes(),
        ),
    }
}

fn raw_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn ok<T: Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}

/// A JSON request body under any content type Confluent accepts (axum's `Json` insists on
/// `application/json`, which Confluent clients do not send).
struct RegistryJson<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for RegistryJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        check_content_type(request.headers())?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::malformed_body(rejection.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(RegistryJson)
            .map_err(|error| match error.classify() {
                serde_json::error::Category::Data => ApiError::unprocessable_body(error),
                _ => ApiError::malformed_body(error),
            })
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if ACCEPTED_CONTENT_TYPES
        .iter()
        .any(|accepted| accepted.eq_ignore_ascii_case(essence))
    {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(text))
    }
}

/// Runs a state change on the blocking pool: it may write the data file, and no lock is held
/// across an await.
async fn change<R: Send + 'static>(
    state: &RegistryState,
    change: impl FnOnce(&mut crate::store::State) -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.change(change))
        .await
        .map_err(|error| ApiError::store(format_args!("state update did not finish: {error}")))?
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

impl SchemaRequest {
    fn candidate(&self) -> Result<CandidateSchema, ApiError> {
        let text = self
            .schema
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| ApiError::invalid_schema("the request has no \"schema\" field"))?;
        CandidateSchema::parse(
            text,
            self.schema_type.as_deref(),
            !self.references.is_empty(),
        )
    }
}

#[derive(Debug, Serialize)]
struct VersionBody {
    subject: String,
    version: u32,
    id: u32,
    schema: String,
}

impl From<VersionRecord> for VersionBody {
    fn from(record: VersionRecord) -> Self {
        Self {
            subject: record.subject,
            version: record.version,
            id: record.id,
            schema: record.schema,
        }
    }
}

fn parse_version(text: &str) -> Result<VersionSelector, ApiError> {
    if text.eq_ignore_ascii_case("latest") || text == "-1" {
        return Ok(VersionSelector::Latest);
    }
    match text.parse::<u32>() {
        Ok(number) if (1..=i32::MAX as u32).contains(&number) => {
            Ok(VersionSelector::Number(number))
        }
        _ => Err(ApiError::invalid_version(text)),
    }
}

/// Ids that are not numbers cannot name a schema, which Confluent answers with "not found".
fn parse_id(text: &str) -> Result<u32, ApiError> {
    text.parse()
        .map_err(|_| ApiError::schema_id_not_found(&format!("'{text}'")))
}

async fn root() -> Response {
    ok(&serde_json::json!({}))
}

async fn list_subjects(State(state): State<RegistryState>) -> Response {
    ok(&state.read(|s| s.subjects.keys().cloned().collect::<Vec<_>>()))
}

async fn register_schema(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    RegistryJson(request): RegistryJson<SchemaRequest>,
) -> Result<Response, ApiError> {
    let candidate = request.candidate()?;
    let log_subject = subject.clone();
    let registered = change(&state, move |s| s.register(&subject, candidate)).await?;
    if registered.new_version {
        tracing::info!(
            subject = %log_subject,
            id = registered.id,
            version = registered.version,
            "registered schema"
        );
    }
    Ok(ok(&serde_json::json!({ "id": registered.id })))
}

async fn lookup_schema(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    RegistryJson(request): RegistryJson<SchemaRequest>,
) -> Result<Response, ApiError> {
    // An unknown subject is reported before an invalid schema, as Confluent does.
    state.read(|s| s.version_numbers(&subject))?;
    let candidate = request.candidate()?;
    let record = state.read(|s| s.lookup(&subject, &candidate))?;
    Ok(ok(&VersionBody::from(record)))
}

async fn delete_subject(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
) -> Result<Response, ApiError> {
    let log_subject = subject.clone();
    let deleted = change(&state, move |s| s.delete_subject(&subject)).await?;
    tracing::info!(subject = %log_subject, versions = ?deleted, "deleted subject");
    Ok(ok(&deleted))
}

async fn list_versions(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(&state.read(|s| s.version_numbers(&subject))?))
}

async fn get_version(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let selector = parse_version(&version)?;
    let record = state.read(|s| s.version(&subject, selector))?;
    Ok(ok(&VersionBody::from(record)))
}

async fn get_version_schema(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let selector = parse_version(&version)?;
    let record = state.read(|s| s.version(&subject, selector))?;
    Ok(raw_response(StatusCode::OK, record.schema.into_bytes()))
}

async fn get_schema_by_id(
    State(state): State<RegistryState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let schema = state.read(|s| s.schema(id).map(|stored| stored.schema.clone()))?;
    Ok(ok(&serde_json::json!({ "schema": schema })))
}

async fn get_raw_schema_by_id(
    State(state): State<RegistryState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let schema = state.read(|s| s.schema(id).map(|stored| stored.schema.clone()))?;
    Ok(raw_response(StatusCode::OK, schema.into_bytes()))
}

async fn schema_types() -> Response {
    ok(&[crate::store::AVRO])
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    #[serde(alias = "compatibilityLevel")]
    compatibility: Option<String>,
}

impl ConfigRequest {
    fn level(&self) -> Result<CompatibilityLevel, ApiError> {
        let text = self.compatibility.as_deref().unwrap_or_default();
        text.parse()
            .map_err(|()| ApiError::invalid_compatibility_level(text))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigQuery {
    #[serde(default)]
    default_to_global: bool,
}

fn level_body(level: CompatibilityLevel) -> Response {
    ok(&serde_json::json!({ "compatibilityLevel": level }))
}

fn updated_body(level: CompatibilityLevel) -> Response {
    ok(&serde_json::json!({ "compatibility": level }))
}

async fn get_global_config(State(state): State<RegistryState>) -> Response {
    level_body(state.read(|s| s.global_compatibility))
}

async fn put_global_config(
    State(state): State<RegistryState>,
    RegistryJson(request): RegistryJson<ConfigRequest>,
) -> Result<Response, ApiError> {
    let level = request.level()?;
    change(&state, move |s| {
        s.global_compatibility = level;
        Ok(())
    })
    .await?;
    tracing::info!(%level, "set global compatibility");
    Ok(updated_body(level))
}

async fn get_subject_config(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(query): Query<ConfigQuery>,
) -> Result<Response, ApiError> {
    let level = state.read(|s| s.subject_compatibility(&subject, query.default_to_global))?;
    Ok(level_body(level))
}

async fn put_subject_config(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    RegistryJson(request): RegistryJson<ConfigRequest>,
) -> Result<Response, ApiError> {
    let level = request.level()?;
    let log_subject = subject.clone();
    change(&state, move |s| {
        s.subject_compatibility.insert(subject, level);
        Ok(())
    })
    .await?;
    tracing::info!(subject = %log_subject, %level, "set subject compatibility");
    Ok(updated_body(level))
}

async fn delete_subject_config(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
) -> Result<Response, ApiError> {
    let previous = change(&state, move |s| s.delete_subject_compatibility(&subject)).await?;
    Ok(level_body(previous))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_accept_latest_and_positive_numbers_only() {
        assert_eq!(parse_version("latest"), Ok(VersionSelector::Latest));
        assert_eq!(parse_version("-1"), Ok(VersionSelector::Latest));
        assert_eq!(parse_version("3"), Ok(VersionSelector::Number(3)));
        for bad in ["0", "-2", "x", "2147483648", ""] {
            assert_eq!(
                parse_version(bad).map_err(|e| e.error_code),
                Err(42202),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_ok(), "missing is tolerated");
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(check_content_type(&headers).is_ok());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            check_content_type(&headers).map_err(|e| e.error_code),
            Err(415)
        );
    }
}
