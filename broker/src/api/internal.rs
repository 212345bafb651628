//! The internal append endpoint: a broker that received records for a partition it does not
//! lead sends the encoded RecordBatch here. The batch is CRC-checked before it is appended.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use runnel_common::error::ErrorBody;
use runnel_common::time::now_ms;

use super::extract::{ApiPath, RawBody};
use super::model::AppendResult;
use super::state::{AppState, Leadership};
use crate::error::BrokerError;
use crate::log::batch;
use crate::metrics::Metrics;

#[utoipa::path(post, path = "/internal/v1/topics/{topic}/partitions/{partition}/append", tag = "internal",
    params(("topic" = String, Path), ("partition" = i64, Path)),
    request_body(content = Vec<u8>, description = "One Kafka RecordBatch v2", content_type = "application/vnd.kafka.record-batch"),
    responses((status = 200, body = AppendResult), (status = 404, body = ErrorBody), (status = 421, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn append_batch(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, i64)>,
    _headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<AppendResult>, BrokerError> {
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    let partition = state.partition_id(&topic, &name, partition)?;
    let local = match state.leadership(&view, &topic, &name, partition)? {
        Leadership::Local(local) => local,
        Leadership::Remote { leader_id, url } => {
            return Err(state.not_leader(&name, partition, leader_id, &url));
        }
    };
    let header = batch::validate(&body)
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
    let mut bytes = body.to_vec();
    let info = local
        .append(&mut bytes, now_ms())
        .map_err(|e| BrokerError::from_log(&name, partition, e))?;
    Metrics::add(&state.metrics.records_appended, header.record_count as u64);
    state.storage.flush_if_due(&local).await?;
    Ok(Json(AppendResult {
        base_offset: info.base_offset,
        last_offset: info.last_offset,
        max_timestamp: info.max_timestamp,
    }))
}
