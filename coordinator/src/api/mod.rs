//! The coordinator's HTTP API. Every group-scoped route goes through [`route_group`], which
//! serves the group here when this coordinator owns its shard, and otherwise forwards the
//! request once to the owner — so brokers and clients may call any coordinator.

pub mod admin;
pub mod consumers;
pub mod extract;
pub mod members;
pub mod model;
pub mod openapi;
pub mod reads;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use crate::brokers::Brokers;
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::ownership::{Ownership, Route};
use crate::shard::Shard;

/// Header marking a request another coordinator (or a broker) already routed.
pub const FORWARDED_HEADER: &str = "x-runnel-forwarded";
/// Header a broker sets to the base URL the client called, for the `base_uri` of instances.
pub const ORIGIN_HEADER: &str = "x-runnel-origin";

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<CoordinatorConfig>,
    pub ownership: Arc<Ownership>,
    pub brokers: Brokers,
    pub http: reqwest::Client,
    pub readiness: runnel_common::http::Readiness,
}

/// The shard serving this request's group, put in place by [`route_group`].
#[derive(Clone)]
pub struct Served(pub Arc<Shard>);

pub fn router(state: AppState) -> Router {
    let grouped = Router::new()
        .route("/v1/groups/{group}/heartbeat", post(members::heartbeat))
        .route(
            "/v1/groups/{group}/offsets",
            post(members::commit).get(members::committed),
        )
        .route("/consumers/{group}", post(consumers::create))
        .route(
            "/consumers/{group}/instances/{instance}",
            delete(consumers::remove),
        )
        .route(
            "/consumers/{group}/instances/{instance}/subscription",
            post(consumers::subscribe)
                .get(consumers::subscription)
                .delete(consumers::unsubscribe),
        )
        .route(
            "/consumers/{group}/instances/{instance}/assignments",
            post(consumers::assign).get(consumers::assignments),
        )
        .route(
            "/consumers/{group}/instances/{instance}/records",
            get(reads::records),
        )
        .route(
            "/consumers/{group}/instances/{instance}/offsets",
            post(consumers::commit).get(consumers::committed),
        )
        .route(
            "/consumers/{group}/instances/{instance}/positions",
            post(consumers::seek),
        )
        .route(
            "/consumers/{group}/instances/{instance}/positions/beginning",
            post(consumers::seek_beginning),
        )
        .route(
            "/consumers/{group}/instances/{instance}/positions/end",
            post(consumers::seek_end),
        )
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups/{group}",
            get(admin::describe).delete(admin::delete_group),
        )
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups/{group}/consumers",
            get(admin::consumers),
        )
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups/{group}/lags",
            get(admin::lags),
        )
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups/{group}/offsets:reset",
            post(admin::reset_offsets),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), route_group));
    Router::new()
        .merge(grouped)
        .route("/v1/groups", get(admin::local_groups))
        .route("/v1/groups/{group}/coordinator", get(members::lookup))
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups",
            get(admin::list_groups),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::serve))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.ownership.metrics.render(&state.ownership),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() && !state.ownership.settled() {
        return runnel_common::error::ApiError::new(
            runnel_common::error::ErrorCode::NotReady,
            "the group shards are not all owned and loaded yet",
        )
        .into_response();
    }
    state.readiness.response()
}

async fn route_group(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(group) = runnel_common::http::group_in_path(request.uri().path()) else {
        return next.run(request).await;
    };
    if let Err(error) = check_group_id(&group) {
        return error.into_response();
    }
    match state.ownership.route(&group) {
        Ok(Route::Here(shard)) => {
            request.extensions_mut().insert(Served(shard));
            next.run(request).await
        }
        Ok(Route::There(url)) if !request.headers().contains_key(FORWARDED_HEADER) => {
            forward(&state, &url, request)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        }
        Ok(Route::There(_)) => {
            let shard = state.ownership.shard_of(&group).unwrap_or(0);
            CoordinatorError::CoordinatorNotAvailable { shard }.into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// Group ids are path segments and record keys: printable, at most 249 bytes like topics.
pub fn check_group_id(group: &str) -> Result<(), CoordinatorError> {
    if group.is_empty() || group.len() > 249 || group.chars().any(|c| c.is_control()) {
        return Err(CoordinatorError::InvalidParameter(format!(
            "invalid group id {group:?}: 1 to 249 printable characters"
        )));
    }
    Ok(())
}

/// Relays `request` to the coordinator at `base` once and returns its answer as it is.
async fn forward(
    state: &AppState,
    base: &str,
    request: Request,
) -> Result<Response, CoordinatorError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| CoordinatorError::MalformedRequest(format!("cannot read the body: {e}")))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = state
        .http
        .request(parts.method.clone(), format!("{base}{path}"))
        .header(FORWARDED_HEADER, "1")
        .timeout(runnel_common::http::group_relay_timeout(&parts.uri))
        .body(bytes);
    for name in [axum::http::header::CONTENT_TYPE, axum::http::header::ACCEPT] {
        if let Some(value) = parts.headers.get(&name) {
            builder = builder.header(name, value.clone());
        }
    }
    if let Some(value) = parts.headers.get(ORIGIN_HEADER) {
        builder = builder.header(ORIGIN_HEADER, value.clone());
    }
    let answer = builder.send().await.map_err(|e| CoordinatorError::Broker {
        code: runnel_common::error::ErrorCode::CoordinatorNotAvailable,
        message: format!("coordinator {base} unreachable: {e}"),
    })?;
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .cloned();
    let retry_after = answer
        .headers()
        .get(axum::http::header::RETRY_AFTER)
        .cloned();
    let body = answer.bytes().await.map_err(|e| CoordinatorError::Broker {
        code: runnel_common::error::ErrorCode::CoordinatorNotAvailable,
        message: format!("coordinator {base} failed mid-answer: {e}"),
    })?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(value) = content_type {
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_bytes(value.as_bytes())
                .unwrap_or(HeaderValue::from_static("application/json")),
        );
    }
    if let Some(value) = retry_after
        && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
    {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    Ok(response)
}
