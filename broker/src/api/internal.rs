//! Internal endpoints brokers call on each other: the append endpoint a broker forwards
//! encoded batches to, and the two replication endpoints followers call on their leader.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use runnel_common::error::ErrorBody;
use runnel_common::time::now_ms;
use serde::Deserialize;

use super::append::{self, Acks};
use super::extract::{ApiPath, ApiQuery, RawBody};
use super::model::AppendResult;
use super::state::{AppState, Leadership};
use crate::error::BrokerError;
use crate::log::batch;
use crate::metrics::Metrics;
use crate::replication::follower::{EpochEnd, HIGH_WATERMARK_HEADER, LOG_START_HEADER};
use crate::storage::partition::{Partition, Role};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AppendQuery {
    /// As on the client produce endpoints.
    pub acks: Option<String>,
}

#[utoipa::path(post, path = "/internal/v1/topics/{topic}/partitions/{partition}/append", tag = "internal",
    params(("topic" = String, Path), ("partition" = i64, Path), AppendQuery),
    request_body(content = Vec<u8>, description = "One Kafka RecordBatch v2", content_type = "application/vnd.kafka.record-batch"),
    responses((status = 200, body = AppendResult), (status = 404, body = ErrorBody), (status = 421, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn append_batch(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, i64)>,
    ApiQuery(query): ApiQuery<AppendQuery>,
    RawBody(body): RawBody,
) -> Result<Json<AppendResult>, BrokerError> {
    let acks = Acks::parse(query.acks.as_deref())?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    let partition = state.partition_id(&topic, &name, partition)?;
    let local = match state.leadership(&view, &topic, &name, partition)? {
        Leadership::Local(local) => local,
        Leadership::Remote { leader_id, url } => {
            return Err(state.not_leader(&name, partition, leader_id, &url));
        }
    };
    // A CRC check, not a full decode: the batch was encoded by a peer broker, and the CRC
    // covers every record byte, so corruption on the way is caught without decoding again.
    let header = batch::check(&body)
        .map_err(|e| BrokerError::InvalidRequest(format!("invalid record batch: {e}")))?;
    if header.size != body.len() {
        return Err(BrokerError::InvalidRequest(
            "body must hold exactly one record batch".into(),
        ));
    }
    let limit = local.config().max_message_bytes;
    if body.len() as u64 > limit {
        return Err(BrokerError::RecordTooLarge {
            size: body.len(),
            limit,
        });
    }
    let epoch = topic
        .partitions
        .get(&partition)
        .map_or(0, |s| s.leader_epoch);
    let mut bytes = body.to_vec();
    let info = append::append_local(&state, &local, epoch, &mut bytes, acks, now_ms())?;
    Metrics::add(&state.metrics.records_appended, header.record_count as u64);
    append::confirm(&state, &local, epoch, info.last_offset, acks).await?;
    Ok(Json(AppendResult {
        base_offset: info.base_offset,
        last_offset: info.last_offset,
        max_timestamp: info.max_timestamp,
    }))
}

/// The local replica of a partition this broker leads at `leader_epoch`.
///
/// # Errors
/// `NotLeader` naming the leader when the metadata says another broker leads; otherwise
/// `LeaderNotAvailable` while this replica is not (yet, or any more) leader at that epoch.
fn leader_replica(
    state: &AppState,
    name: &str,
    partition: i64,
    leader_epoch: u32,
) -> Result<std::sync::Arc<Partition>, BrokerError> {
    let view = state.view();
    let topic = state.topic(&view, name)?;
    let partition = state.partition_id(&topic, name, partition)?;
    if let Leadership::Remote { leader_id, url } =
        state.leadership(&view, &topic, name, partition)?
    {
        return Err(state.not_leader(name, partition, leader_id, &url));
    }
    let not_leader = || BrokerError::LeaderNotAvailable {
        topic: name.to_string(),
        partition,
    };
    let local = state.storage.get(name, partition).ok_or_else(not_leader)?;
    let assignment = local.assignment().ok_or_else(not_leader)?;
    if local.role() != Role::Leader
        || assignment.leader_epoch != leader_epoch
        || !state.storage.replicator().lease_valid()
    {
        // Either side may be stale: the follower retries after its metadata catches up.
        return Err(not_leader());
    }
    Ok(local)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReplicateQuery {
    /// The fetching replica.
    pub replica_id: u32,
    /// The leader epoch the follower follows; must be the leader's.
    pub leader_epoch: u32,
    /// The follower's log end offset: where to read from.
    pub fetch_offset: i64,
    pub max_bytes: Option<usize>,
    pub max_wait_ms: Option<u64>,
}

#[utoipa::path(get, path = "/internal/v1/topics/{topic}/partitions/{partition}/replicate", tag = "internal",
    params(("topic" = String, Path), ("partition" = i64, Path), ReplicateQuery),
    responses((status = 200, description = "record batches as raw bytes; x-runnel-high-watermark and x-runnel-log-start-offset headers"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn replicate(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, i64)>,
    ApiQuery(query): ApiQuery<ReplicateQuery>,
) -> Result<Response, BrokerError> {
    let local = leader_replica(&state, &name, partition, query.leader_epoch)?;
    let partition = local.partition;
    let assignment = local
        .assignment()
        .ok_or_else(|| BrokerError::LeaderNotAvailable {
            topic: name.clone(),
            partition,
        })?;
    if !assignment.replicas.contains(&query.replica_id)
        || assignment.leader == Some(query.replica_id)
    {
        return Err(BrokerError::InvalidParameter(format!(
            "broker {} is not a follower of {name}-{partition}",
            query.replica_id
        )));
    }
    let offsets = local.offsets();
    if query.fetch_offset < offsets.log_start || query.fetch_offset > offsets.log_end {
        let mut response = BrokerError::OffsetOutOfRange {
            topic: name,
            partition,
            requested: query.fetch_offset,
            log_start: offsets.log_start,
            log_end: offsets.log_end,
        }
        .to_api();
        response.message.push_str(" (replica fetch)");
        let mut response = axum::response::IntoResponse::into_response(response);
        response
            .headers_mut()
            .insert(LOG_START_HEADER, HeaderValue::from(offsets.log_start));
        return Ok(response);
    }
    let replicator = state.storage.replicator();
    local.record_fetch(
        query.replica_id,
        query.fetch_offset,
        now_ms(),
        replicator.lease_valid(),
    );
    if query.fetch_offset == local.log_end() {
        let wait = Duration::from_millis(query.max_wait_ms.unwrap_or(500).min(10_000));
        local.wait_for_log_end(query.fetch_offset, wait).await;
    }
    let max_bytes = query.max_bytes.unwrap_or(1 << 20).clamp(1, 64 << 20);
    let bytes = if query.fetch_offset < local.log_end() {
        local
            .read(query.fetch_offset, max_bytes, i64::MAX)
            .map_err(|e| BrokerError::from_log(&name, partition, e))?
    } else {
        Vec::new()
    };
    let offsets = local.offsets();
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.kafka.record-batch"),
    );
    headers.insert(
        HIGH_WATERMARK_HEADER,
        HeaderValue::from(offsets.high_watermark),
    );
    headers.insert(LOG_START_HEADER, HeaderValue::from(offsets.log_start));
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EpochEndQuery {
    /// The epoch whose end the follower asks for (its latest).
    pub leader_epoch: i32,
    /// The leader epoch the follower follows; must be the leader's.
    pub current_leader_epoch: u32,
}

#[utoipa::path(get, path = "/internal/v1/topics/{topic}/partitions/{partition}/epoch-end", tag = "internal",
    params(("topic" = String, Path), ("partition" = i64, Path), EpochEndQuery),
    responses((status = 200, body = EpochEnd), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn epoch_end(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, i64)>,
    ApiQuery(query): ApiQuery<EpochEndQuery>,
) -> Result<Json<EpochEnd>, BrokerError> {
    let local = leader_replica(&state, &name, partition, query.current_leader_epoch)?;
    let found = local.with_log(|log| log.end_offset_for_epoch(query.leader_epoch));
    Ok(Json(match found {
        Some((leader_epoch, end_offset)) => EpochEnd {
            leader_epoch,
            end_offset,
        },
        None => EpochEnd {
            leader_epoch: -1,
            end_offset: -1,
        },
    }))
}

#[utoipa::path(post, path = "/internal/v1/controller/elect-preferred", tag = "internal",
    responses((status = 202, description = "the controller will move leaders to preferred replicas that are in sync"),
        (status = 421, body = ErrorBody)))]
pub async fn elect_preferred(
    State(state): State<AppState>,
) -> Result<axum::http::StatusCode, BrokerError> {
    let view = state.view();
    match &view.controller {
        Some((record, _)) if record.broker_id == state.broker_id() => {
            state.controller.elect_preferred();
            Ok(axum::http::StatusCode::ACCEPTED)
        }
        _ => Err(BrokerError::NotController {
            broker_id: state.broker_id(),
            controller: view.controller.as_ref().map_or_else(
                || "no controller".to_string(),
                |(r, _)| format!("broker {}", r.broker_id),
            ),
        }),
    }
}
