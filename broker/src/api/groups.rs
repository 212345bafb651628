//! Consumer groups are served by the coordinators; a broker relays every group request
//! (REST consumer instances, member heartbeats and commits, group admin) to the coordinator
//! that owns the group's shard, so clients need only know a broker. The relayed request
//! carries this broker's URL, which becomes the `base_uri` of instances created through it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runnel_common::error::{ApiError, ErrorCode};

use super::state::AppState;

/// Header a relayed request carries: the base URL the client called.
pub const ORIGIN_HEADER: &str = "x-runnel-origin";
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Coordinator URLs to try: the owner of the group's shard first, then the others (which
/// forward to the owner themselves).
fn candidates(state: &AppState, path: &str) -> Vec<String> {
    let view = state.view();
    let owner = runnel_common::http::group_in_path(path).and_then(|group| {
        let partitions = view.topics.get(OFFSETS_TOPIC)?.record.partitions;
        let shard = runnel_common::partitioner::partition_for_key(group.as_bytes(), partitions);
        view.shards.get(&shard).map(|(o, _)| o.url.clone())
    });
    let mut urls: Vec<String> = owner.into_iter().collect();
    for c in view.coordinators.values() {
        if !urls.contains(&c.url) {
            urls.push(c.url.clone());
        }
    }
    urls
}

pub async fn relay(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.config.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return ApiError::new(
                ErrorCode::MalformedRequest,
                format!("cannot read the body: {error}"),
            )
            .into_response();
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let urls = candidates(&state, parts.uri.path());
    if urls.is_empty() {
        return ApiError::new(
            ErrorCode::CoordinatorNotAvailable,
            "no coordinator is registered in this cluster",
        )
        .into_response();
    }
    let mut last_error = String::new();
    for url in urls {
        let mut builder = state
            .http
            .request(parts.method.clone(), format!("{url}{path}"))
            .header(ORIGIN_HEADER, state.config.advertised_url())
            .timeout(runnel_common::http::group_relay_timeout(&parts.uri))
            .body(bytes.clone());
        for name in [header::CONTENT_TYPE, header::ACCEPT] {
            if let Some(value) = parts.headers.get(&name) {
                builder = builder.header(name, value.clone());
            }
        }
        match builder.send().await {
            Ok(answer) => {
                let status = answer.status();
                let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
                let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
                match answer.bytes().await {
                    Ok(body) => {
                        let mut response = Response::new(Body::from(body));
                        *response.status_mut() = StatusCode::from_u16(status.as_u16())
                            .unwrap_or(StatusCode::BAD_GATEWAY);
                        if let Some(value) = content_type
                            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
                        {
                            response.headers_mut().insert(header::CONTENT_TYPE, value);
                        }
                        if let Some(value) = retry_after
                            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
                        {
                            response.headers_mut().insert(header::RETRY_AFTER, value);
                        }
                        return response;
                    }
                    // The coordinator died mid-answer: the request may have taken effect, so
                    // it is not retried elsewhere.
                    Err(error) => {
                        return ApiError::new(
                            ErrorCode::CoordinatorNotAvailable,
                            format!("coordinator {url} failed mid-answer: {error}"),
                        )
                        .into_response();
                    }
                }
            }
            // Not connected: nothing was sent, so another coordinator may take it.
            Err(error) if error.is_connect() => last_error = format!("{url}: {error}"),
            Err(error) => {
                return ApiError::new(
                    ErrorCode::CoordinatorNotAvailable,
                    format!("coordinator {url} did not answer: {error}"),
                )
                .into_response();
            }
        }
    }
    ApiError::new(
        ErrorCode::CoordinatorNotAvailable,
        format!("no coordinator reachable (last: {last_error})"),
    )
    .into_response()
}
