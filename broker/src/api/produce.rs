//! Produce handlers: v3 records (one or a stream), v2 `/topics/{topic}` (JSON, binary) and
//! NDJSON batches. All share [`append`]: choose partitions, batch per partition, append
//! locally or at the leader, wait for durability as `flush.messages` asks.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runnel_common::error::ErrorBody;
use runnel_common::meta::{ClusterView, TopicView};
use runnel_common::partitioner;
use runnel_common::time::{iso8601, now_ms};
use serde::Deserialize;

use super::append::{self, Acks};
use super::extract::{ApiPath, ApiQuery, RawBody, media_type};
use super::forward;
use super::model::*;
use super::state::{AppState, Leadership};
use crate::error::BrokerError;
use crate::log::batch::{self, NewRecord, TimestampType};
use crate::metrics::Metrics;
use crate::produce::{self, DataType, Embedded, ProduceRecord};
use crate::topic_config;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ProduceQuery {
    /// `all` or `-1` (default): acknowledged once every in-sync replica has the write (and at
    /// least `min.insync.replicas` are in sync); `1`: once the leader has it; `0`: the same
    /// as `1` over HTTP.
    pub acks: Option<String>,
}

/// Where one record landed.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub partition: u32,
    pub offset: i64,
    pub timestamp: i64,
}

/// Records by partition, each with its index in the request.
type Groups<'a> = BTreeMap<u32, Vec<(usize, NewRecord<'a>)>>;

/// Chooses each record's partition: explicit, else Kafka's murmur2 of the key, else one
/// partition per request in round-robin order (sticky for the request's whole batch).
fn assign_partitions<'a>(
    state: &AppState,
    name: &str,
    topic: &TopicView,
    records: Vec<(usize, ProduceRecord<'a>)>,
) -> (Groups<'a>, Vec<(usize, BrokerError)>) {
    let count = topic.record.partitions.max(1);
    let config = topic_config::effective(state.storage.defaults(), &topic.record.configs);
    let limit = config.max_message_bytes;
    // Compaction keeps one record per key, so a compacted topic has no use for keyless ones.
    let key_required = config.cleanup.compact;
    let sticky = {
        let mut map = state.sticky.lock().unwrap_or_else(|p| p.into_inner());
        let next = map
            .entry(name.to_string())
            .or_insert_with(|| rand::random::<u32>() % count);
        let chosen = *next % count;
        *next = (chosen + 1) % count;
        chosen
    };
    let mut groups: BTreeMap<u32, Vec<(usize, NewRecord<'a>)>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (index, record) in records {
        if key_required && record.record.key.is_none() {
            errors.push((
                index,
                BrokerError::RecordKeyRequired {
                    topic: name.to_string(),
                },
            ));
            continue;
        }
        let size = record.record.approximate_size() + batch::HEADER_LEN;
        if size as u64 > limit {
            errors.push((index, BrokerError::RecordTooLarge { size, limit }));
            continue;
        }
        let partition = match (record.partition, record.record.key.as_deref()) {
            (Some(p), _) => match state.partition_id(topic, name, p) {
                Ok(p) => p,
                Err(e) => {
                    errors.push((index, e));
                    continue;
                }
            },
            (None, Some(key)) => partitioner::partition_for_key(key, count),
            (None, None) => sticky,
        };
        groups
            .entry(partition)
            .or_default()
            .push((index, record.record));
    }
    (groups, errors)
}

/// Splits a partition's records into batches no larger than `limit` bytes.
fn chunk_batches<'a>(
    records: Vec<(usize, NewRecord<'a>)>,
    limit: u64,
) -> Vec<Vec<(usize, NewRecord<'a>)>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut size = batch::HEADER_LEN as u64;
    for (index, record) in records {
        let record_size = record.approximate_size() as u64;
        if !current.is_empty() && size + record_size > limit {
            chunks.push(std::mem::take(&mut current));
            size = batch::HEADER_LEN as u64;
        }
        size += record_size;
        current.push((index, record));
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Appends grouped records and reports, per record index, where it landed or why not.
async fn append_groups(
    state: &AppState,
    view: &ClusterView,
    name: &str,
    topic: &TopicView,
    groups: BTreeMap<u32, Vec<(usize, NewRecord<'_>)>>,
    forwarded: bool,
    acks: Acks,
) -> Vec<(usize, Result<Placed, BrokerError>)> {
    let config = topic_config::effective(state.storage.defaults(), &topic.record.configs);
    let mut out = Vec::new();
    let mut pending_confirmations = Vec::new();
    for (partition, records) in groups {
        let indices: Vec<usize> = records.iter().map(|(i, _)| *i).collect();
        let leadership = match state.leadership(view, topic, name, partition) {
            Ok(Leadership::Remote { leader_id, url }) if forwarded => {
                Err(state.not_leader(name, partition, leader_id, &url))
            }
            other => other,
        };
        let leadership = match leadership {
            Ok(l) => l,
            Err(error) => {
                out.extend(indices.into_iter().map(|i| (i, Err(error.clone()))));
                continue;
            }
        };
        // The epoch the request was routed by: an append is refused if this broker's replica
        // is not leader at exactly that epoch.
        let epoch = topic
            .partitions
            .get(&partition)
            .map_or(0, |s| s.leader_epoch);
        let mut last_offset = None;
        for chunk in chunk_batches(records, config.max_message_bytes) {
            let now = now_ms();
            let log_append_time =
                (config.timestamp_type == TimestampType::LogAppendTime).then_some(now);
            let mut encoded = batch::encode(
                &chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                log_append_time,
            );
            let appended = match &leadership {
                Leadership::Local(local) => {
                    append::append_local(state, local, epoch, &mut encoded, acks, now).map(|info| {
                        last_offset = Some(info.last_offset);
                        (info.base_offset, info.max_timestamp)
                    })
                }
                Leadership::Remote { url, .. } => {
                    forward::append_remote(state, url, name, partition, encoded, acks)
                        .await
                        .map(|r| (r.base_offset, r.max_timestamp))
                }
            };
            match appended {
                Ok((base_offset, max_timestamp)) => {
                    Metrics::add(&state.metrics.records_appended, chunk.len() as u64);
                    for (delta, (index, record)) in chunk.iter().enumerate() {
                        let timestamp = if log_append_time.is_some() {
                            max_timestamp
                        } else {
                            record.timestamp
                        };
                        out.push((
                            *index,
                            Ok(Placed {
                                partition,
                                offset: base_offset + delta as i64,
                                timestamp,
                            }),
                        ));
                    }
                }
                Err(error) => {
                    out.extend(chunk.iter().map(|(i, _)| (*i, Err(error.clone()))));
                }
            }
        }
        if let (Leadership::Local(local), Some(last_offset)) = (leadership, last_offset) {
            pending_confirmations.push((local, epoch, last_offset, indices));
        }
    }
    // Wait for durability and replication of every touched partition together (the flusher
    // groups their fsyncs; followers fetch them in parallel).
    let confirmations = pending_confirmations
        .iter()
        .map(|(local, epoch, last_offset, _)| {
            append::confirm(state, local, *epoch, *last_offset, acks)
        });
    let results = futures_util::future::join_all(confirmations).await;
    for ((_, _, _, indices), result) in pending_confirmations.iter().zip(results) {
        if let Err(error) = result {
            for entry in out.iter_mut().filter(|(i, _)| indices.contains(i)) {
                entry.1 = Err(error.clone());
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Chooses partitions and appends; results are in record order.
async fn append(
    state: &AppState,
    name: &str,
    records: Vec<(usize, ProduceRecord<'_>)>,
    forwarded: bool,
    acks: Acks,
) -> Result<Vec<(usize, Result<Placed, BrokerError>)>, BrokerError> {
    let view = state.view();
    let topic = state.topic(&view, name)?;
    let (groups, errors) = assign_partitions(state, name, &topic, records);
    let mut results = append_groups(state, &view, name, &topic, groups, forwarded, acks).await;
    results.extend(errors.into_iter().map(|(i, e)| (i, Err(e))));
    results.sort_by_key(|(i, _)| *i);
    Ok(results)
}

#[utoipa::path(post, path = "/v3/clusters/{cluster_id}/topics/{topic}/records", tag = "produce",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ProduceQuery),
    request_body(content = V3ProduceRecord, description = "One record, or several concatenated JSON objects (a stream)", content_type = "application/json"),
    responses((status = 200, body = V3ProduceResult, description = "One result for one record; for a stream, one JSON result per line (`application/x-ndjson`) in request order, each a result or an error body"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn produce_v3(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ProduceQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let acks = Acks::parse(query.acks.as_deref())?;
    super::extract::check_content_type(&headers, &["application/json"], true)?;
    let view = state.view();
    state.topic(&view, &name)?;
    let parsed = produce::parse_v3(&body, now_ms())?;
    let single = parsed.len() == 1;
    let mut types = Vec::with_capacity(parsed.len());
    let mut records = Vec::with_capacity(parsed.len());
    let mut failures = Vec::new();
    for (index, item) in parsed.into_iter().enumerate() {
        match item {
            Ok((record, key_type, value_type)) => {
                let sizes = (
                    record.record.key.as_ref().map(|k| k.len()),
                    record.record.value.as_ref().map(|v| v.len()),
                );
                types.push((key_type, value_type, sizes));
                records.push((index, record));
            }
            Err(error) => {
                types.push((None, None, (None, None)));
                failures.push((index, Err(error)));
            }
        }
    }
    let mut results = append(
        &state,
        &name,
        records,
        forward::was_forwarded(&headers),
        acks,
    )
    .await?;
    results.extend(failures);
    results.sort_by_key(|(i, _)| *i);
    let render = |index: usize, result: Result<Placed, BrokerError>| -> (StatusCode, Vec<u8>) {
        match result {
            Ok(placed) => {
                let (key_type, value_type, (key_size, value_size)) = types[index];
                let size_type = |t: Option<DataType>, size: Option<usize>| {
                    size.map(|size| V3SizeType {
                        kind: t.unwrap_or(DataType::Json).as_str(),
                        size,
                    })
                };
                let result = V3ProduceResult {
                    error_code: 200,
                    cluster_id: state.cluster_id.to_string(),
                    topic_name: name.clone(),
                    partition_id: placed.partition,
                    offset: placed.offset,
                    timestamp: iso8601(placed.timestamp),
                    key: size_type(key_type, key_size),
                    value: size_type(value_type, value_size),
                };
                (
                    StatusCode::OK,
                    serde_json::to_vec(&result).unwrap_or_default(),
                )
            }
            Err(error) => {
                let api = error.to_api();
                (
                    api.code.status(),
                    serde_json::to_vec(&api.body()).unwrap_or_default(),
                )
            }
        }
    };
    if single {
        let Some((index, result)) = results.pop() else {
            return Err(BrokerError::Internal("no result for the record".into()));
        };
        // One record's error is the answer's error: sent as every error is, Retry-After included.
        if let Err(error) = result {
            return Err(error);
        }
        let (status, body) = render(index, result);
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let mut out = Vec::with_capacity(results.len() * 200);
    for (index, result) in results {
        let (_, body) = render(index, result);
        out.extend_from_slice(&body);
        out.push(b'\n');
    }
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

#[utoipa::path(post, path = "/topics/{topic}", tag = "produce",
    params(("topic" = String, Path), ProduceQuery),
    request_body(content = V2ProduceRequest, description = "v2 records; or with Content-Type application/x-ndjson, one V2ProduceRecord per line", content_type = "application/vnd.kafka.json.v2+json"),
    responses((status = 200, body = V2ProduceResponse, description = "v2 answer; for NDJSON bodies a BatchProduceResponse"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn produce_v2(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ProduceQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, BrokerError> {
    let acks = Acks::parse(query.acks.as_deref())?;
    let form = match media_type(&headers).as_deref() {
        Some("application/vnd.kafka.json.v2+json" | "application/json") => Some(Embedded::Json),
        Some("application/vnd.kafka.binary.v2+json") => Some(Embedded::Binary),
        Some("application/x-ndjson") => None,
        other => {
            return Err(BrokerError::UnsupportedMediaType {
                found: other.unwrap_or("none").to_string(),
                expected: "application/vnd.kafka.json.v2+json, application/vnd.kafka.binary.v2+json, application/json, application/x-ndjson".into(),
            });
        }
    };
    let view = state.view();
    state.topic(&view, &name)?;
    let forwarded = forward::was_forwarded(&headers);
    let now = now_ms();
    let Some(embedded) = form else {
        return produce_ndjson(&state, &name, &body, now, forwarded, acks).await;
    };
    let records = produce::parse_v2(&body, embedded, now)?;
    let results = append(
        &state,
        &name,
        records.into_iter().enumerate().collect(),
        forwarded,
        acks,
    )
    .await?;
    let offsets = results
        .into_iter()
        .map(|(_, result)| match result {
            Ok(placed) => V2Offset {
                partition: Some(placed.partition),
                offset: Some(placed.offset),
                error_code: None,
                error: None,
            },
            Err(error) => {
                let api = error.to_api();
                V2Offset {
                    partition: None,
                    offset: None,
                    error_code: Some(api.code.code()),
                    error: Some(api.message),
                }
            }
        })
        .collect();
    Ok(Json(V2ProduceResponse {
        key_schema_id: None,
        value_schema_id: None,
        offsets,
    })
    .into_response())
}

/// NDJSON: every record is checked before any is appended; the answer is per partition.
async fn produce_ndjson(
    state: &AppState,
    name: &str,
    body: &[u8],
    now: i64,
    forwarded: bool,
    acks: Acks,
) -> Result<Response, BrokerError> {
    let records = produce::parse_ndjson(body, now)?;
    let view = state.view();
    let topic = state.topic(&view, name)?;
    let (groups, errors) = assign_partitions(
        state,
        name,
        &topic,
        records.into_iter().enumerate().collect(),
    );
    if let Some((index, error)) = errors.into_iter().next() {
        // Errors with a code of their own keep it; the rest name the record.
        return Err(match error {
            BrokerError::RecordTooLarge { size, limit } => {
                BrokerError::RecordTooLarge { size, limit }
            }
            BrokerError::RecordKeyRequired { topic } => BrokerError::RecordKeyRequired { topic },
            other => BrokerError::InvalidRequest(format!("record #{index}: {other}")),
        });
    }
    let counts: BTreeMap<u32, usize> = groups.iter().map(|(p, r)| (*p, r.len())).collect();
    let results = append_groups(state, &view, name, &topic, groups, forwarded, acks).await;
    let mut per_partition: BTreeMap<u32, BatchPartitionResult> = BTreeMap::new();
    for (_, result) in results {
        match result {
            Ok(placed) => {
                let entry = per_partition
                    .entry(placed.partition)
                    .or_insert(BatchPartitionResult {
                        partition: placed.partition,
                        base_offset: Some(placed.offset),
                        last_offset: Some(placed.offset),
                        record_count: 0,
                        error_code: None,
                        message: None,
                    });
                entry.base_offset = entry.base_offset.map(|b| b.min(placed.offset));
                entry.last_offset = entry.last_offset.map(|l| l.max(placed.offset));
                entry.record_count += 1;
            }
            Err(error) => {
                let api = error.to_api();
                // The partition of a failed record is the group it was in.
                for (&partition, &count) in &counts {
                    per_partition
                        .entry(partition)
                        .or_insert(BatchPartitionResult {
                            partition,
                            base_offset: None,
                            last_offset: None,
                            record_count: count,
                            error_code: Some(api.code.code()),
                            message: Some(api.message.clone()),
                        });
                }
            }
        }
    }
    Ok(Json(BatchProduceResponse {
        partitions: per_partition.into_values().collect(),
    })
    .into_response())
}
