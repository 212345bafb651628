//! Reading through a REST consumer instance: `GET .../records` takes what the group grants,
//! auto-commits what the last poll handed out, starts new partitions at the committed offset
//! (else by `auto.offset.reset`), reads every partition from the brokers in parallel, and
//! advances positions only where nothing moved them meanwhile.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use runnel_common::error::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::consumers::{commit_offsets, not_found, reading, uncommitted, with_instance};
use super::extract::{ApiPath, ApiQuery};
use super::{AppState, Served};
use crate::assign::{Assignment, Tp};
use crate::brokers::{Page, PageRecord};
use crate::error::CoordinatorError;
use crate::group::MemberKind;
use crate::shard::Shard;

const MAX_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RecordsQuery {
    /// Longest wait in ms when nothing is there yet (default `--request-timeout-ms`, at most 60000).
    pub timeout: Option<u64>,
    /// About how many bytes of records to return (default `--request-max-bytes`).
    pub max_bytes: Option<u64>,
}

/// One record in the REST Proxy v2 shape, plus `timestamp` and `headers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V2Record {
    pub topic: String,
    #[schema(value_type = Object)]
    pub key: Box<RawValue>,
    #[schema(value_type = Object)]
    pub value: Box<RawValue>,
    pub partition: u32,
    pub offset: i64,
    pub timestamp: i64,
    #[schema(value_type = Vec<Object>)]
    pub headers: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/consumers/{group}/instances/{instance}/records", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name"), RecordsQuery), responses((status = 200, body = Vec<V2Record>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn records(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<Json<Vec<V2Record>>, CoordinatorError> {
    let timeout = Duration::from_millis(
        query
            .timeout
            .unwrap_or(state.config.request_timeout_ms)
            .min(MAX_TIMEOUT_MS),
    );
    let max_bytes = query
        .max_bytes
        .unwrap_or(state.config.request_max_bytes)
        .max(1);
    let topics = state.brokers.topics();
    let poll = with_instance(&shard, &group, &name, |g, _| {
        g.instances
            .get(&name)
            .map(|i| i.poll.clone())
            .ok_or_else(|| not_found(&group, &name))
    })?;
    let _polling = poll.lock().await;
    // Take what the group grants now (revocations run in the shard's sweep, which commits
    // what was consumed of them first), and what an auto-commit owes.
    let (partitions, commits, format, reset) = with_instance(&shard, &group, &name, |g, now| {
        if let Some(member) = g.group.members.get(&name)
            && member.kind == MemberKind::RestInstance
            && member.revoking.is_empty()
        {
            g.group.refresh_target(&topics);
            let target = g.group.target.get(&name).cloned().unwrap_or_default();
            if g.group
                .members
                .get(&name)
                .is_some_and(|m| m.assigned.is_subset(&target))
            {
                g.group.reconcile(&name, None, now);
            }
        }
        let partitions = reading(g, &name).ok_or_else(|| CoordinatorError::NoSubscription {
            instance: name.clone(),
        })?;
        let instance = g
            .instances
            .get(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        let commits = if instance.config.auto_commit {
            uncommitted(g, &name)
        } else {
            Vec::new()
        };
        Ok((
            partitions,
            commits,
            instance.config.format.clone(),
            instance.config.auto_offset_reset.clone(),
        ))
    })?;
    commit_offsets(&shard, &group, commits).await?;
    let positions = start_positions(&state, &shard, &group, &name, &partitions, &reset).await?;
    let broker_format = match format.as_str() {
        "json" => "json",
        "string" => "string",
        _ => "binary",
    };
    let pages = fetch(&state, &positions, max_bytes, timeout, broker_format).await;
    // Advance only where nothing moved the position meanwhile (a seek, a revocation).
    let mut out = Vec::new();
    let mut resets = Vec::new();
    {
        let mut data = shard.data();
        let g = data
            .groups
            .get_mut(&group)
            .ok_or_else(|| not_found(&group, &name))?;
        let still = reading(g, &name).unwrap_or_default();
        let instance = g
            .instances
            .get_mut(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        for ((tp, start), page) in pages {
            let page = match page {
                Ok(page) => page,
                Err(error) if error.code() == runnel_common::error::ErrorCode::OffsetOutOfRange => {
                    resets.push(tp);
                    continue;
                }
                Err(error) => {
                    tracing::debug!(topic = %tp.0, partition = tp.1, %error, "read failed; next poll retries");
                    continue;
                }
            };
            if !still.contains(&tp) || instance.positions.get(&tp) != Some(&start) {
                continue;
            }
            instance
                .positions
                .insert(tp.clone(), page.next_offset.max(start));
            for record in page.records {
                out.push(render(&tp, record, &format));
            }
        }
        // An out-of-range position (retention passed it) starts over by auto.offset.reset.
        for tp in resets {
            instance.positions.remove(&tp);
        }
    }
    Ok(Json(out))
}

/// Each partition's position, initialized from the committed offset, else by
/// `auto.offset.reset`.
async fn start_positions(
    state: &AppState,
    shard: &Shard,
    group: &str,
    name: &str,
    partitions: &Assignment,
    reset: &str,
) -> Result<Vec<(Tp, i64)>, CoordinatorError> {
    let missing: Vec<Tp> = {
        let data = shard.data();
        let g = data
            .groups
            .get(group)
            .ok_or_else(|| not_found(group, name))?;
        let instance = g
            .instances
            .get(name)
            .ok_or_else(|| not_found(group, name))?;
        partitions
            .iter()
            .filter(|tp| !instance.positions.contains_key(*tp))
            .cloned()
            .collect()
    };
    let mut found = Vec::new();
    for tp in missing {
        let committed = {
            let data = shard.data();
            data.groups
                .get(group)
                .and_then(|g| g.offsets.get(&tp))
                .map(|c| c.offset)
        };
        let offsets = state.brokers.offsets(&tp.0, tp.1, None).await?;
        let position = match committed {
            Some(c) if c >= offsets.earliest_offset && c <= offsets.latest_offset => c,
            _ => match reset {
                "earliest" => offsets.earliest_offset,
                "latest" => offsets.latest_offset,
                _ => {
                    return Err(CoordinatorError::InvalidRequest(format!(
                        "no committed offset for {}-{} and auto.offset.reset is none",
                        tp.0, tp.1
                    )));
                }
            },
        };
        found.push((tp, position));
    }
    let mut data = shard.data();
    let g = data
        .groups
        .get_mut(group)
        .ok_or_else(|| not_found(group, name))?;
    let instance = g
        .instances
        .get_mut(name)
        .ok_or_else(|| not_found(group, name))?;
    for (tp, position) in found {
        instance.positions.entry(tp).or_insert(position);
    }
    Ok(partitions
        .iter()
        .filter_map(|tp| instance.positions.get(tp).map(|p| (tp.clone(), *p)))
        .collect())
}

type Fetched = Vec<((Tp, i64), Result<Page, CoordinatorError>)>;

/// Reads every partition once without waiting; when all are empty, long-polls them all and
/// returns as soon as one has records.
async fn fetch(
    state: &AppState,
    positions: &[(Tp, i64)],
    max_bytes: u64,
    timeout: Duration,
    format: &str,
) -> Fetched {
    let per_partition = (max_bytes / positions.len().max(1) as u64).max(1);
    let read = |wait: Duration| {
        positions
            .iter()
            .map(|(tp, start)| {
                let brokers = state.brokers.clone();
                let tp = tp.clone();
                let start = *start;
                async move {
                    let page = brokers
                        .read(&tp.0, tp.1, start, per_partition, wait, format)
                        .await;
                    ((tp, start), page)
                }
            })
            .collect::<FuturesUnordered<_>>()
    };
    let first: Fetched = read(Duration::ZERO).collect().await;
    let any = first
        .iter()
        .any(|(_, page)| page.as_ref().is_ok_and(|p| !p.records.is_empty()));
    if any || timeout.is_zero() || positions.is_empty() {
        return first;
    }
    let mut waiting = read(timeout);
    let mut done = Vec::new();
    while let Some(((tp, start), page)) = waiting.next().await {
        let has = page.as_ref().is_ok_and(|p| !p.records.is_empty());
        done.push(((tp, start), page));
        if has {
            break;
        }
    }
    done
}

fn render(tp: &Tp, record: PageRecord, format: &str) -> V2Record {
    let data = |d: Option<crate::brokers::TypedData>| -> Box<RawValue> {
        match d {
            None => null(),
            // JSON stays JSON; in a json instance strings become JSON strings; binary and
            // string instances get what the broker rendered (base64 or text) as a string.
            Some(d) if d.kind == "JSON" && format == "json" => d.data,
            Some(d) if d.kind == "JSON" => RawValue::from_string(
                serde_json::Value::String(d.data.get().to_string()).to_string(),
            )
            .unwrap_or_else(|_| null()),
            Some(d) => d.data,
        }
    };
    V2Record {
        topic: tp.0.clone(),
        key: data(record.key),
        value: data(record.value),
        partition: tp.1,
        offset: record.offset,
        timestamp: record.timestamp,
        headers: record.headers,
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).expect("null is valid JSON")
}
