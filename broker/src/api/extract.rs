//! Extractors whose rejections are JSON errors from the broker's code table, not axum's
//! plain-text ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::BrokerError;

/// Path parameters; a malformed one is a 400 `InvalidParameter`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = BrokerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| BrokerError::InvalidParameter(e.body_text()))
    }
}

/// Query parameters; a malformed one is a 400 `InvalidParameter`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = BrokerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| BrokerError::InvalidParameter(e.body_text()))
    }
}

/// The whole request body; over the size limit is a 413 `PayloadTooLarge`.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = BrokerError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    BrokerError::PayloadTooLarge {
                        limit: state.config.max_request_bytes,
                    }
                } else {
                    BrokerError::MalformedRequest(e.body_text())
                }
            })
    }
}

/// A JSON body of type `T`; wrong content type is 415, malformed JSON 400.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = BrokerError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_content_type(request.headers(), &["application/json"], true)?;
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| BrokerError::MalformedRequest(format!("malformed request body: {e}")))
    }
}

/// The media type of the request without parameters, lowercased; `None` when absent.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Fails with 415 unless the content type is one of `accepted` (or absent and `allow_missing`).
///
/// # Errors
/// [`BrokerError::UnsupportedMediaType`].
pub fn check_content_type(
    headers: &HeaderMap,
    accepted: &[&str],
    allow_missing: bool,
) -> Result<(), BrokerError> {
    match media_type(headers) {
        None if allow_missing => Ok(()),
        Some(found) if accepted.contains(&found.as_str()) => Ok(()),
        found => Err(BrokerError::UnsupportedMediaType {
            found: found.unwrap_or_else(|| "none".into()),
            expected: accepted.join(", "),
        }),
    }
}
