//! The broker's HTTP API: REST Proxy-shaped admin (v3), produce (v3, v2, NDJSON), reads,
//! the internal append endpoint brokers forward to, and operations endpoints.
//!
//! API boundary: this is the only module besides `error` that knows axum.

mod admin;
mod append;
mod extract;
mod forward;
mod groups;
mod internal;
mod model;
mod openapi;
mod ops;
mod produce;
mod records;
mod state;

use std::time::Instant;

use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get, post};

pub use state::AppState;

use crate::metrics::Metrics;

/// The broker's router over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_request_bytes;
    Router::new()
        .route("/v3/clusters", get(admin::list_clusters))
        .route("/v3/clusters/{cluster_id}", get(admin::get_cluster))
        .route(
            "/v3/clusters/{cluster_id}/brokers",
            get(admin::list_brokers),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics",
            get(admin::list_topics).post(admin::create_topic),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}",
            get(admin::get_topic)
                .delete(admin::delete_topic)
                .patch(admin::update_topic),
        )
        .route(
            "/v3/clusters/{cluster_id}/preferred-leader-election",
            post(admin::elect_preferred_leaders),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/partitions",
            get(admin::list_partitions),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/partitions/{partition}",
            get(admin::get_partition),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/partitions/{partition}/offsets",
            get(records::list_offsets),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/partitions/{partition}/records",
            get(records::read_records),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/configs",
            get(admin::list_configs),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/configs:alter",
            post(admin::alter_configs),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/configs/{name}",
            get(admin::get_config)
                .put(admin::set_config)
                .delete(admin::reset_config),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics/{topic}/records",
            post(produce::produce_v3),
        )
        .route("/consumers/{*rest}", any(groups::relay))
        .route("/v1/groups", get(groups::relay))
        .route("/v1/groups/{*rest}", any(groups::relay))
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups",
            get(groups::relay),
        )
        .route(
            "/v3/clusters/{cluster_id}/consumer-groups/{*rest}",
            any(groups::relay),
        )
        .route("/topics", get(admin::list_topic_names))
        .route("/topics/{topic}", post(produce::produce_v2))
        .route(
            "/topics/{topic}/partitions/{partition}/offsets",
            get(records::v2_offsets),
        )
        .route(
            "/internal/v1/topics/{topic}/partitions/{partition}/append",
            post(internal::append_batch),
        )
        .route(
            "/internal/v1/topics/{topic}/partitions/{partition}/replicate",
            get(internal::replicate),
        )
        .route(
            "/internal/v1/topics/{topic}/partitions/{partition}/epoch-end",
            get(internal::epoch_end),
        )
        .route(
            "/internal/v1/controller/elect-preferred",
            post(internal::elect_preferred),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::serve))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Counts requests, latencies and bytes per matched route.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let bytes_in = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let response = next.run(request).await;
    let metrics: &Metrics = &state.metrics;
    Metrics::add(&metrics.bytes_in, bytes_in);
    if let Some(size) = response.body().size_hint().exact() {
        Metrics::add(&metrics.bytes_out, size);
    }
    metrics.observe_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
