//! The REST Proxy v2 consumer-instance API. An instance's membership, assignment and read
//! positions live here with the group's shard, not with the broker a client called, so a
//! client whose broker dies carries on through any other broker with the same instance path.
//!
//! Committed offsets mean what they mean in Kafka: the next offset the group will read.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use runnel_common::error::ErrorBody;
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiPath, OptJson};
use super::model::*;
use super::{AppState, ORIGIN_HEADER, Served};
use crate::assign::{Assignment, Tp};
use crate::error::CoordinatorError;
use crate::offsets_log::{Change, InstanceConfig};
use crate::shard::{GroupData, Instance, Shard};

pub(super) fn not_found(group: &str, instance: &str) -> CoordinatorError {
    CoordinatorError::InstanceNotFound {
        group: group.to_string(),
        instance: instance.to_string(),
    }
}

/// Reads instance `name` of `group` under the shard lock, refreshing its idle timer.
pub(super) fn with_instance<T>(
    shard: &Shard,
    group: &str,
    name: &str,
    f: impl FnOnce(&mut GroupData, Instant) -> Result<T, CoordinatorError>,
) -> Result<T, CoordinatorError> {
    let now = Instant::now();
    let mut data = shard.data();
    let g = data
        .groups
        .get_mut(group)
        .filter(|g| g.instances.contains_key(name))
        .ok_or_else(|| not_found(group, name))?;
    if let Some(instance) = g.instances.get_mut(name) {
        instance.last_seen = now;
    }
    if let Some(member) = g.group.members.get_mut(name) {
        member.last_seen = now;
    }
    f(g, now)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(rename = "auto.offset.reset", default)]
    pub auto_offset_reset: Option<String>,
    /// A boolean, or `"true"`/`"false"` as REST Proxy takes it.
    #[serde(rename = "auto.commit.enable", default)]
    #[schema(value_type = Option<Object>)]
    pub auto_commit_enable: Option<serde_json::Value>,
    #[serde(rename = "fetch.min.bytes", default)]
    #[schema(value_type = Option<Object>)]
    pub fetch_min_bytes: Option<serde_json::Value>,
    #[serde(rename = "consumer.request.timeout.ms", default)]
    #[schema(value_type = Option<Object>)]
    pub request_timeout_ms: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Created {
    pub instance_id: String,
    pub base_uri: String,
}

#[utoipa::path(post, path = "/consumers/{group}", tag = "consumers", params(("group" = String, Path, description = "Consumer group id")), request_body = CreateRequest, responses((status = 200, body = Created), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath(group): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Created>), CoordinatorError> {
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| format!("rest-consumer-{}", runnel_common::meta::store::random_id()));
    super::check_group_id(&name)
        .map_err(|_| CoordinatorError::InvalidRequest(format!("invalid instance name {name:?}")))?;
    let format = request
        .format
        .as_deref()
        .unwrap_or("binary")
        .to_ascii_lowercase();
    if !matches!(format.as_str(), "json" | "binary" | "string") {
        return Err(CoordinatorError::InvalidRequest(format!(
            "format must be json, binary or string, not {format:?}"
        )));
    }
    let reset = request
        .auto_offset_reset
        .as_deref()
        .unwrap_or("latest")
        .to_ascii_lowercase();
    if !matches!(reset.as_str(), "earliest" | "latest" | "none") {
        return Err(CoordinatorError::InvalidRequest(format!(
            "auto.offset.reset must be earliest, latest or none, not {reset:?}"
        )));
    }
    let auto_commit = match &request.auto_commit_enable {
        None => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(CoordinatorError::InvalidRequest(format!(
                "auto.commit.enable must be true or false, not {other}"
            )));
        }
    };
    let config = InstanceConfig {
        format,
        auto_offset_reset: reset,
        auto_commit,
        topics: None,
        topic_pattern: None,
        assignment: None,
    };
    {
        let data = shard.data();
        if data
            .groups
            .get(&group)
            .is_some_and(|g| g.instances.contains_key(&name))
        {
            return Err(CoordinatorError::InstanceExists {
                group: group.clone(),
                instance: name,
            });
        }
    }
    let instance_name = name.clone();
    persist(&shard, &group, &name, Some(config.clone()), move |g| {
        g.instances
            .insert(instance_name, Instance::new(config, Instant::now()));
    })
    .await?;
    let origin = headers
        .get(ORIGIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| state.ownership.url.clone(), str::to_string);
    Ok((
        StatusCode::OK,
        Json(Created {
            base_uri: format!("{origin}/consumers/{group}/instances/{name}"),
            instance_id: name,
        }),
    ))
}

/// Writes instance `name`'s settings (`None`: its deletion) to the shard's log, then applies
/// `apply` to its group.
async fn persist(
    shard: &Shard,
    group: &str,
    name: &str,
    config: Option<InstanceConfig>,
    apply: impl FnOnce(&mut GroupData) + Send + 'static,
) -> Result<(), CoordinatorError> {
    let owner = group.to_string();
    let assignor = shard.settings.default_assignor;
    shard
        .write(
            vec![Change::Instance {
                group: group.to_string(),
                name: name.to_string(),
                config,
            }],
            move |data| {
                let g = data
                    .groups
                    .entry(owner.clone())
                    .or_insert_with(|| GroupData::new(&owner, assignor));
                apply(g);
            },
        )
        .await
}

/// Commits consumed positions (no metadata), as REST Proxy commits do.
pub(super) async fn commit_offsets(
    shard: &Shard,
    group: &str,
    offsets: Vec<(Tp, i64)>,
) -> Result<(), CoordinatorError> {
    let offsets = offsets.into_iter().map(|(tp, o)| (tp, o, String::new()));
    shard.commit(group, offsets.collect()).await.map(|_| ())
}

/// The partitions the instance reads now: its group assignment or its manual one.
pub(super) fn reading(g: &GroupData, name: &str) -> Option<Assignment> {
    if let Some(member) = g.group.members.get(name) {
        return Some(member.assigned.clone());
    }
    g.instances
        .get(name)
        .and_then(|i| i.config.assignment.as_ref())
        .map(|a| a.iter().cloned().collect())
}

/// Positions that differ from what is committed: what an auto-commit writes.
pub(super) fn uncommitted(g: &GroupData, name: &str) -> Vec<(Tp, i64)> {
    let Some(instance) = g.instances.get(name) else {
        return Vec::new();
    };
    instance
        .positions
        .iter()
        .filter(|(tp, position)| g.offsets.get(*tp).is_none_or(|c| c.offset != **position))
        .map(|(tp, position)| (tp.clone(), *position))
        .collect()
}

#[utoipa::path(delete, path = "/consumers/{group}/instances/{instance}", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn remove(
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, CoordinatorError> {
    let (commits, poll) = with_instance(&shard, &group, &name, |g, _| {
        let instance = g
            .instances
            .get(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        let commits = if instance.config.auto_commit {
            uncommitted(g, &name)
        } else {
            Vec::new()
        };
        Ok((commits, instance.poll.clone()))
    })?;
    let _polling = poll.lock().await;
    // Closing commits what was consumed when auto-commit is on, as a Kafka consumer does.
    commit_offsets(&shard, &group, commits).await?;
    let removed = name.clone();
    persist(&shard, &group, &name, None, move |g| {
        g.instances.remove(&removed);
        g.group.remove_member(&removed);
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_pattern: Option<String>,
}

#[utoipa::path(post, path = "/consumers/{group}/instances/{instance}/subscription", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body = SubscriptionBody, responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn subscribe(
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> Result<StatusCode, CoordinatorError> {
    let subscription = match (&body.topics, &body.topic_pattern) {
        (Some(topics), None) if !topics.is_empty() => {
            crate::group::Subscription::Topics(topics.iter().cloned().collect())
        }
        (None, Some(pattern)) => crate::group::Subscription::pattern(pattern)?,
        (Some(_), Some(_)) => {
            return Err(CoordinatorError::InvalidRequest(
                "give either topics or topic_pattern, not both".into(),
            ));
        }
        _ => {
            return Err(CoordinatorError::InvalidRequest(
                "give a non-empty topics list or a topic_pattern".into(),
            ));
        }
    };
    let config = with_instance(&shard, &group, &name, |g, _| {
        let instance = g
            .instances
            .get(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        if instance.config.assignment.is_some() {
            return Err(CoordinatorError::SubscriptionConflict {
                instance: name.clone(),
                reason: "reads a manual assignment",
            });
        }
        let mut config = instance.config.clone();
        config.topics = body.topics.clone();
        config.topic_pattern = body.topic_pattern.clone();
        Ok(config)
    })?;
    let member = name.clone();
    let timeout = shard.settings.instance_timeout;
    persist(&shard, &group, &name, Some(config.clone()), move |g| {
        if let Some(instance) = g.instances.get_mut(&member) {
            instance.config = config;
            g.group
                .upsert_rest_member(&member, subscription, timeout, Instant::now());
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/consumers/{group}/instances/{instance}/subscription", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), responses((status = 200, body = SubscriptionBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn subscription(
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
) -> Result<Json<SubscriptionBody>, CoordinatorError> {
    with_instance(&shard, &group, &name, |g, _| {
        let instance = g
            .instances
            .get(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        Ok(Json(SubscriptionBody {
            topics: Some(instance.config.topics.clone().unwrap_or_default()),
            topic_pattern: instance.config.topic_pattern.clone(),
        }))
    })
}

#[utoipa::path(delete, path = "/consumers/{group}/instances/{instance}/subscription", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn unsubscribe(
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, CoordinatorError> {
    let (config, commits) = with_instance(&shard, &group, &name, |g, _| {
        let instance = g
            .instances
            .get(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        let mut config = instance.config.clone();
        config.topics = None;
        config.topic_pattern = None;
        let commits = if config.auto_commit {
            uncommitted(g, &name)
        } else {
            Vec::new()
        };
        Ok((config, commits))
    })?;
    commit_offsets(&shard, &group, commits).await?;
    let member = name.clone();
    persist(&shard, &group, &name, Some(config.clone()), move |g| {
        g.group.remove_member(&member);
        if let Some(instance) = g.instances.get_mut(&member) {
            instance.config = config;
            instance.positions.clear();
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/consumers/{group}/instances/{instance}/assignments", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body = PartitionsBody, responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PartitionsBody>,
) -> Result<StatusCode, CoordinatorError> {
    let topics = state.brokers.topics();
    let mut partitions = Vec::with_capacity(body.partitions.len());
    for p in &body.partitions {
        partitions.push(check_partition(&topics, &p.topic, p.partition)?);
    }
    let config = with_instance(&shard, &group, &name, |g, _| {
        if g.group.members.contains_key(&name) {
            return Err(CoordinatorError::SubscriptionConflict {
                instance: name.clone(),
                reason: "is subscribed",
            });
        }
        let instance = g
            .instances
            .get(&name)
            .ok_or_else(|| not_found(&group, &name))?;
        let mut config = instance.config.clone();
        config.assignment = (!partitions.is_empty()).then(|| partitions.clone());
        Ok(config)
    })?;
    let member = name.clone();
    persist(&shard, &group, &name, Some(config.clone()), move |g| {
        if let Some(instance) = g.instances.get_mut(&member) {
            let keep: Assignment = config.assignment.iter().flatten().cloned().collect();
            instance.positions.retain(|tp, _| keep.contains(tp));
            instance.config = config;
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/consumers/{group}/instances/{instance}/assignments", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), responses((status = 200, body = PartitionsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn assignments(
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
) -> Result<Json<PartitionsBody>, CoordinatorError> {
    with_instance(&shard, &group, &name, |g, _| {
        let partitions = reading(g, &name).unwrap_or_default();
        Ok(Json(PartitionsBody {
            partitions: partitions
                .into_iter()
                .map(|(topic, partition)| PartitionRef {
                    topic,
                    partition: i64::from(partition),
                })
                .collect(),
        }))
    })
}

#[utoipa::path(post, path = "/consumers/{group}/instances/{instance}/offsets", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body(content = OffsetsBody, description = "Offsets to commit (the next offset to read); an empty body commits everything consumed"), responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn commit(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    OptJson(body): OptJson<OffsetsBody>,
) -> Result<StatusCode, CoordinatorError> {
    let topics = state.brokers.topics();
    let offsets = with_instance(&shard, &group, &name, |g, _| {
        let reading = reading(g, &name).unwrap_or_default();
        if body.offsets.is_empty() {
            // No body: commit everything consumed so far.
            let instance = g
                .instances
                .get(&name)
                .ok_or_else(|| not_found(&group, &name))?;
            return Ok(instance
                .positions
                .iter()
                .map(|(tp, p)| (tp.clone(), *p))
                .collect::<Vec<_>>());
        }
        let mut out = Vec::new();
        for o in &body.offsets {
            let tp = check_partition(&topics, &o.topic, o.partition)?;
            check_offset(o.offset)?;
            if !reading.contains(&tp) {
                return Err(CoordinatorError::PartitionNotAssigned {
                    consumer: name.clone(),
                    topic: tp.0,
                    partition: tp.1,
                });
            }
            out.push((tp, o.offset));
        }
        Ok(out)
    })?;
    commit_offsets(&shard, &group, offsets).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/consumers/{group}/instances/{instance}/offsets", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body(content = PartitionsBody, description = "Partitions to look up; an empty body lists every committed offset"), responses((status = 200, body = OffsetsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn committed(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    OptJson(body): OptJson<PartitionsBody>,
) -> Result<Json<OffsetsBody>, CoordinatorError> {
    let topics = state.brokers.topics();
    let mut asked = Vec::new();
    for p in &body.partitions {
        asked.push(check_partition(&topics, &p.topic, p.partition)?);
    }
    with_instance(&shard, &group, &name, |g, _| {
        let list: Vec<Tp> = if asked.is_empty() {
            g.offsets.keys().cloned().collect()
        } else {
            asked
        };
        Ok(Json(OffsetsBody {
            offsets: list
                .into_iter()
                .filter_map(|tp| {
                    g.offsets.get(&tp).map(|c| PartitionOffset {
                        topic: tp.0.clone(),
                        partition: i64::from(tp.1),
                        offset: c.offset,
                        metadata: Some(c.metadata.clone()),
                    })
                })
                .collect(),
        }))
    })
}

/// Sets positions of assigned partitions; `None` offsets are looked up per partition.
async fn set_positions(
    state: &AppState,
    shard: &Shard,
    group: &str,
    name: &str,
    wanted: Vec<(Tp, Option<i64>)>,
    end: bool,
) -> Result<(), CoordinatorError> {
    with_instance(shard, group, name, |g, _| {
        let reading = reading(g, name).unwrap_or_default();
        for (tp, _) in &wanted {
            if !reading.contains(tp) {
                return Err(CoordinatorError::PartitionNotAssigned {
                    consumer: name.to_string(),
                    topic: tp.0.clone(),
                    partition: tp.1,
                });
            }
        }
        Ok(())
    })?;
    let mut resolved = BTreeMap::new();
    for (tp, offset) in wanted {
        let offset = match offset {
            Some(offset) => offset,
            None => {
                let offsets = state.brokers.offsets(&tp.0, tp.1, None).await?;
                if end {
                    offsets.latest_offset
                } else {
                    offsets.earliest_offset
                }
            }
        };
        resolved.insert(tp, offset);
    }
    with_instance(shard, group, name, |g, _| {
        let instance = g
            .instances
            .get_mut(name)
            .ok_or_else(|| not_found(group, name))?;
        instance.positions.extend(resolved);
        Ok(())
    })
}

#[utoipa::path(post, path = "/consumers/{group}/instances/{instance}/positions", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body = OffsetsBody, responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn seek(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<OffsetsBody>,
) -> Result<StatusCode, CoordinatorError> {
    let topics = state.brokers.topics();
    let mut wanted = Vec::new();
    for o in &body.offsets {
        let tp = check_partition(&topics, &o.topic, o.partition)?;
        check_offset(o.offset)?;
        wanted.push((tp, Some(o.offset)));
    }
    set_positions(&state, &shard, &group, &name, wanted, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn seek_edge(
    state: AppState,
    shard: std::sync::Arc<Shard>,
    group: String,
    name: String,
    body: PartitionsBody,
    end: bool,
) -> Result<StatusCode, CoordinatorError> {
    let topics = state.brokers.topics();
    let mut wanted = Vec::new();
    for p in &body.partitions {
        wanted.push((check_partition(&topics, &p.topic, p.partition)?, None));
    }
    set_positions(&state, &shard, &group, &name, wanted, end).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/consumers/{group}/instances/{instance}/positions/beginning", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body = PartitionsBody, responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn seek_beginning(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PartitionsBody>,
) -> Result<StatusCode, CoordinatorError> {
    seek_edge(state, shard, group, name, body, false).await
}

#[utoipa::path(post, path = "/consumers/{group}/instances/{instance}/positions/end", tag = "consumers", params(("group" = String, Path, description = "Consumer group id"), ("instance" = String, Path, description = "Consumer instance name")), request_body = PartitionsBody, responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn seek_end(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((group, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PartitionsBody>,
) -> Result<StatusCode, CoordinatorError> {
    seek_edge(state, shard, group, name, body, true).await
}
