//! Extractors whose rejections are JSON errors from the shared code table.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{AppState, Served};
use crate::error::CoordinatorError;

/// Path parameters; a malformed one is a 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = CoordinatorError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| CoordinatorError::InvalidParameter(e.body_text()))
    }
}

/// Query parameters; a malformed one is a 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = CoordinatorError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| CoordinatorError::InvalidParameter(e.body_text()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Served {
    type Rejection = CoordinatorError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Served>()
            .cloned()
            .ok_or_else(|| CoordinatorError::Internal("group route without a shard".into()))
    }
}

/// A JSON body (any `…json` media type, as REST Proxy's `application/vnd.kafka.v2+json`);
/// an empty body reads as `T::default()` when `T` allows it via [`OptJson`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = CoordinatorError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await?;
        parse(&bytes).map(Self)
    }
}

/// Like [`ApiJson`], but an empty body is `T::default()`.
pub struct OptJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptJson<T> {
    type Rejection = CoordinatorError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse(&bytes).map(Self)
    }
}

async fn body_bytes(
    request: Request,
    state: &AppState,
) -> Result<axum::body::Bytes, CoordinatorError> {
    if let Some(media) = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let media = media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !media.is_empty() && !media.ends_with("json") {
            return Err(CoordinatorError::Broker {
                code: runnel_common::error::ErrorCode::UnsupportedMediaType,
                message: format!(
                    "unsupported content type {media:?}; expected application/json or application/vnd.kafka.v2+json"
                ),
            });
        }
    }
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|e| CoordinatorError::MalformedRequest(e.body_text()))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CoordinatorError> {
    serde_json::from_slice(bytes)
        .map_err(|e| CoordinatorError::MalformedRequest(format!("malformed request body: {e}")))
}
