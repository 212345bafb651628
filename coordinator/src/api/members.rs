//! The member protocol for programmatic clients (streams runner, connect workers, SDKs):
//! heartbeats that carry subscription and owned partitions and answer with the target
//! assignment (KIP-848), commits fenced by member epoch, committed offsets, and the lookup of
//! a group's coordinator.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use runnel_common::error::ErrorBody;
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiPath};
use super::model::*;
use super::{AppState, Served};
use crate::assign::Assignor;
use crate::error::CoordinatorError;
use crate::group::{Heartbeat, Subscription};
use crate::shard::GroupData;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    #[serde(default)]
    pub member_id: Option<String>,
    pub member_epoch: i32,
    #[serde(default)]
    pub subscribed_topic_names: Option<Vec<String>>,
    #[serde(default)]
    pub subscribed_topic_regex: Option<String>,
    /// `sticky` (default), `uniform` or `range`; fixed by the first member of a group.
    #[serde(default)]
    pub assignor: Option<String>,
    #[serde(default)]
    pub owned_partitions: Option<Vec<TopicPartitions>>,
    #[serde(default)]
    pub session_timeout_ms: Option<u64>,
    #[serde(default)]
    pub rebalance_timeout_ms: Option<u64>,
    #[serde(default)]
    pub client_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatResponse {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: u64,
    pub assignment: Vec<TopicPartitions>,
}

#[utoipa::path(post, path = "/v1/groups/{group}/heartbeat", tag = "members", params(("group" = String, Path, description = "Consumer group id")), request_body = HeartbeatRequest, responses((status = 200, body = HeartbeatResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath(group): ApiPath<String>,
    ApiJson(request): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, CoordinatorError> {
    let subscription = match (
        &request.subscribed_topic_names,
        &request.subscribed_topic_regex,
    ) {
        (Some(_), Some(_)) => {
            return Err(CoordinatorError::InvalidRequest(
                "give subscribed_topic_names or subscribed_topic_regex, not both".into(),
            ));
        }
        (Some(names), None) => Some(Subscription::Topics(names.iter().cloned().collect())),
        (None, Some(pattern)) => Some(Subscription::pattern(pattern)?),
        (None, None) => None,
    };
    if request.member_epoch < -1 {
        return Err(CoordinatorError::InvalidRequest(format!(
            "member_epoch {} is invalid",
            request.member_epoch
        )));
    }
    let assignor = match request.assignor.as_deref() {
        None => shard.settings.default_assignor,
        Some(name) => Assignor::parse(name).ok_or_else(|| {
            CoordinatorError::InvalidRequest(format!(
                "assignor must be sticky, uniform or range, not {name:?}"
            ))
        })?,
    };
    let bounded = |value: Option<u64>, name: &str| match value {
        None => Ok(None),
        Some(ms) if (1_000..=3_600_000).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
        Some(ms) => Err(CoordinatorError::InvalidRequest(format!(
            "{name} {ms} is out of range [1000, 3600000]"
        ))),
    };
    let session_timeout = bounded(request.session_timeout_ms, "session_timeout_ms")?;
    let rebalance_timeout = bounded(request.rebalance_timeout_ms, "rebalance_timeout_ms")?;
    let topics = state.brokers.topics();
    let answer = {
        let mut data = shard.data();
        let entry = data
            .groups
            .entry(group.clone())
            .or_insert_with(|| GroupData::new(&group, assignor));
        if entry.group.members.is_empty() {
            entry.group.assignor = assignor;
        }
        entry.group.heartbeat(
            Heartbeat {
                member_id: request.member_id,
                member_epoch: request.member_epoch,
                subscription,
                owned: request
                    .owned_partitions
                    .as_deref()
                    .map(from_topic_partitions),
                session_timeout,
                rebalance_timeout,
                defaults: (
                    shard.settings.session_timeout,
                    shard.settings.rebalance_timeout,
                ),
                client_id: request.client_id.unwrap_or_default(),
            },
            &topics,
            Instant::now(),
        )
    }?;
    Ok(Json(HeartbeatResponse {
        member_id: answer.member_id,
        member_epoch: answer.member_epoch,
        heartbeat_interval_ms: shard.settings.heartbeat_interval.as_millis() as u64,
        assignment: to_topic_partitions(&answer.assignment),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// The committing member; absent for a consumer outside the group protocol, which may
    /// commit only while the group has no members.
    #[serde(default)]
    pub member_id: Option<String>,
    #[serde(default)]
    pub member_epoch: Option<i32>,
    pub offsets: Vec<PartitionOffset>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommittedOffsets {
    pub group: String,
    pub offsets: Vec<CommittedOffset>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[utoipa::path(post, path = "/v1/groups/{group}/offsets", tag = "members", params(("group" = String, Path, description = "Consumer group id")), request_body = CommitRequest, responses((status = 200, body = CommittedOffsets), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn commit(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath(group): ApiPath<String>,
    ApiJson(request): ApiJson<CommitRequest>,
) -> Result<Json<CommittedOffsets>, CoordinatorError> {
    let topics = state.brokers.topics();
    let mut entries = Vec::with_capacity(request.offsets.len());
    for o in &request.offsets {
        let tp = check_partition(&topics, &o.topic, o.partition)?;
        check_offset(o.offset)?;
        entries.push((tp, o.offset, o.metadata.clone().unwrap_or_default()));
    }
    {
        let data = shard.data();
        let members = data.groups.get(&group).map_or(0, |g| g.group.members.len());
        match (&request.member_id, request.member_epoch) {
            (Some(member), Some(epoch)) => {
                let g = data
                    .groups
                    .get(&group)
                    .ok_or_else(|| CoordinatorError::UnknownMember {
                        group: group.clone(),
                        member: member.clone(),
                    })?;
                g.group
                    .check_commit(member, epoch, entries.iter().map(|(tp, _, _)| tp))?;
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(CoordinatorError::InvalidRequest(
                    "member_id and member_epoch go together".into(),
                ));
            }
            (None, None) if members > 0 => {
                return Err(CoordinatorError::GroupNotEmpty {
                    group: group.clone(),
                    members,
                });
            }
            (None, None) => {}
        }
    }
    let now = shard.commit(&group, entries.clone()).await?;
    Ok(Json(CommittedOffsets {
        group,
        offsets: entries
            .into_iter()
            .map(|((topic, partition), offset, metadata)| CommittedOffset {
                topic,
                partition,
                offset,
                metadata,
                commit_timestamp: now,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/groups/{group}/offsets", tag = "members", params(("group" = String, Path, description = "Consumer group id")), responses((status = 200, body = CommittedOffsets), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn committed(
    Served(shard): Served,
    ApiPath(group): ApiPath<String>,
) -> Result<Json<CommittedOffsets>, CoordinatorError> {
    let data = shard.data();
    let g = data
        .groups
        .get(&group)
        .ok_or_else(|| CoordinatorError::GroupNotFound(group.clone()))?;
    Ok(Json(CommittedOffsets {
        group: group.clone(),
        offsets: g
            .offsets
            .iter()
            .map(|((topic, partition), c)| CommittedOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: c.offset,
                metadata: c.metadata.clone(),
                commit_timestamp: c.commit_timestamp,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lookup {
    pub group: String,
    pub shard: u32,
    pub coordinator_id: u32,
    pub url: String,
}

/// Which coordinator owns `group` now; any coordinator answers.
#[utoipa::path(get, path = "/v1/groups/{group}/coordinator", tag = "members", params(("group" = String, Path, description = "Consumer group id")), responses((status = 200, body = Lookup), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    ApiPath(group): ApiPath<String>,
) -> Result<Json<Lookup>, CoordinatorError> {
    super::check_group_id(&group)?;
    let shard = state.ownership.shard_of(&group)?;
    let view = state.brokers.cache.view();
    let (owner, _) = view
        .shards
        .get(&shard)
        .ok_or(CoordinatorError::CoordinatorNotAvailable { shard })?;
    Ok(Json(Lookup {
        group,
        shard,
        coordinator_id: owner.coordinator_id,
        url: owner.url.clone(),
    }))
}
