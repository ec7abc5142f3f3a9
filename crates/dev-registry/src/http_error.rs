//! Errors answered to HTTP clients, in the shape Confluent clients parse:
//! `{"error_code":40401,"message":"Subject 'x' not found."}` with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::json_response;
use crate::compatibility::CompatibilityLevel;

/// One failed request: an HTTP status, Confluent's finer error code, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error_code: u32,
    pub(crate) message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, error_code: u32, message: String) -> Self {
        Self {
            status,
            error_code,
            message,
        }
    }

    pub(crate) fn subject_not_found(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40401,
            format!("Subject '{subject}' not found."),
        )
    }

    pub(crate) fn version_not_found(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {version} not found under subject '{subject}'."),
        )
    }

    pub(crate) fn schema_id_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found."),
        )
    }

    pub(crate) fn schema_not_under_subject(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema not found under subject '{subject}'."),
        )
    }

    pub(crate) fn subject_has_no_config(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40408,
            format!(
                "Subject '{subject}' does not have subject-level compatibility configured; \
                 add ?defaultToGlobal=true to get the global level"
            ),
        )
    }

    pub(crate) fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            404,
            format!("HTTP 404 Not Found: no endpoint {path} in this registry"),
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            405,
            "HTTP 405 Method Not Allowed".to_owned(),
        )
    }

    pub(crate) fn incompatible(
        subject: &str,
        level: CompatibilityLevel,
        details: &[String],
    ) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \
                 \"{subject}\" under compatibility level {level}, details: [{}]; register a \
                 compatible schema or change the level with PUT /config/{subject}",
                details.join("; ")
            ),
        )
    }

    pub(crate) fn invalid_schema(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!("Invalid schema: {detail}"),
        )
    }

    pub(crate) fn invalid_version(version: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are \
                 between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    pub(crate) fn invalid_compatibility_level(level: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!(
                "Invalid compatibility level '{level}'. Valid values are none, backward, \
                 forward, full, backward_transitive, forward_transitive, and full_transitive"
            ),
        )
    }

    pub(crate) fn malformed_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            400,
            format!("Request body is not valid JSON: {detail}"),
        )
    }

    pub(crate) fn unprocessable_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            422,
            format!("Request body does not have the expected fields: {detail}"),
        )
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            format!(
                "Unsupported request content type '{content_type}'; send \
                 application/vnd.schemaregistry.v1+json or application/json"
            ),
        )
    }

    pub(crate) fn store(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            format!("Error in the backend data store: {detail}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &ErrorBody {
                error_code: self.error_code,
                message: &self.message,
            },
        )
    }
}
