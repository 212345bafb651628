//! Group administration, shaped like REST Proxy v3 where it has the shape: list and describe
//! groups, members and lag; reset a group's offsets and delete a group (both only while it
//! is empty, as Kafka requires).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use runnel_common::error::ErrorBody;
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiPath};
use super::model::*;
use super::{AppState, FORWARDED_HEADER, Served};
use crate::assign::Tp;
use crate::error::CoordinatorError;
use crate::offsets_log::Change;
use crate::shard::{GroupData, Shard};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupSummary {
    pub cluster_id: String,
    pub consumer_group_id: String,
    pub state: String,
    pub partition_assignor: String,
    pub group_epoch: i32,
    pub members: usize,
    pub coordinator_id: u32,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupList {
    pub kind: String,
    pub data: Vec<GroupSummary>,
}

fn summary(state: &AppState, cluster_id: &str, g: &GroupData) -> GroupSummary {
    GroupSummary {
        cluster_id: cluster_id.to_string(),
        consumer_group_id: g.group.id.clone(),
        state: g.group.state().to_string(),
        partition_assignor: g.group.assignor.name().to_string(),
        group_epoch: g.group.epoch,
        members: g.group.members.len(),
        coordinator_id: state.ownership.id,
    }
}

fn check_cluster(state: &AppState, cluster_id: &str) -> Result<String, CoordinatorError> {
    let ours = state.brokers.cluster_id()?;
    if ours != cluster_id {
        return Err(CoordinatorError::ClusterNotFound(cluster_id.to_string()));
    }
    Ok(ours)
}

/// The groups of the shards this coordinator serves.
#[utoipa::path(get, path = "/v1/groups", tag = "admin", responses((status = 200, body = GroupList), (status = 503, body = ErrorBody)))]
pub async fn local_groups(
    State(state): State<AppState>,
) -> Result<Json<GroupList>, CoordinatorError> {
    let cluster_id = state.brokers.cluster_id()?;
    let mut data = Vec::new();
    for shard in state.ownership.local_shards() {
        if shard.is_loaded() {
            data.extend(
                shard
                    .data()
                    .groups
                    .values()
                    .map(|g| summary(&state, &cluster_id, g)),
            );
        }
    }
    Ok(Json(GroupList {
        kind: "KafkaConsumerGroupList".into(),
        data,
    }))
}

/// Every group of the cluster: this coordinator's and every other live one's.
#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/consumer-groups", tag = "admin", params(("cluster_id" = String, Path)), responses((status = 200, body = GroupList), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_groups(
    State(state): State<AppState>,
    ApiPath(cluster_id): ApiPath<String>,
) -> Result<Json<GroupList>, CoordinatorError> {
    check_cluster(&state, &cluster_id)?;
    let Json(mut list) = local_groups(State(state.clone())).await?;
    let others: Vec<String> = state
        .brokers
        .cache
        .view()
        .coordinators
        .values()
        .filter(|c| c.coordinator_id != state.ownership.id)
        .map(|c| c.url.clone())
        .collect();
    for url in others {
        let answer = state
            .http
            .get(format!("{url}/v1/groups"))
            .header(FORWARDED_HEADER, "1")
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                if let Ok(other) = response.json::<GroupList>().await {
                    list.data.extend(other.data);
                }
            }
            _ => {
                return Err(CoordinatorError::CoordinatorNotAvailable { shard: 0 });
            }
        }
    }
    list.data
        .sort_by(|a, b| a.consumer_group_id.cmp(&b.consumer_group_id));
    Ok(Json(list))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub consumer_id: String,
    pub client_id: String,
    pub kind: String,
    pub member_epoch: i32,
    pub assignments: Vec<TopicPartitions>,
    pub revoking: Vec<TopicPartitions>,
    pub target: Vec<TopicPartitions>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub summary: GroupSummary,
    pub assignment_epoch: i32,
    pub consumers: Vec<MemberView>,
    pub instances: Vec<String>,
}

fn members(g: &GroupData) -> Vec<MemberView> {
    g.group
        .members
        .values()
        .map(|m| MemberView {
            consumer_id: m.id.clone(),
            client_id: m.client_id.clone(),
            kind: match m.kind {
                crate::group::MemberKind::Client => "client".into(),
                crate::group::MemberKind::RestInstance => "rest_instance".into(),
            },
            member_epoch: m.epoch,
            assignments: to_topic_partitions(&m.assigned),
            revoking: to_topic_partitions(&m.revoking),
            target: to_topic_partitions(&g.group.target.get(&m.id).cloned().unwrap_or_default()),
        })
        .collect()
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/consumer-groups/{group}", tag = "admin", params(("cluster_id" = String, Path), ("group" = String, Path, description = "Consumer group id")), responses((status = 200, body = GroupDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn describe(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((cluster_id, group)): ApiPath<(String, String)>,
) -> Result<Json<GroupDetail>, CoordinatorError> {
    let cluster_id = check_cluster(&state, &cluster_id)?;
    let data = shard.data();
    let g = data
        .groups
        .get(&group)
        .ok_or_else(|| CoordinatorError::GroupNotFound(group.clone()))?;
    Ok(Json(GroupDetail {
        summary: summary(&state, &cluster_id, g),
        assignment_epoch: g.group.target_epoch,
        consumers: members(g),
        instances: g.instances.keys().cloned().collect(),
    }))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsumerList {
    pub kind: String,
    pub data: Vec<MemberView>,
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/consumer-groups/{group}/consumers", tag = "admin", params(("cluster_id" = String, Path), ("group" = String, Path, description = "Consumer group id")), responses((status = 200, body = ConsumerList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn consumers(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((cluster_id, group)): ApiPath<(String, String)>,
) -> Result<Json<ConsumerList>, CoordinatorError> {
    check_cluster(&state, &cluster_id)?;
    let data = shard.data();
    let g = data
        .groups
        .get(&group)
        .ok_or_else(|| CoordinatorError::GroupNotFound(group.clone()))?;
    Ok(Json(ConsumerList {
        kind: "KafkaConsumerList".into(),
        data: members(g),
    }))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lag {
    pub topic_name: String,
    pub partition_id: u32,
    pub current_offset: Option<i64>,
    pub log_end_offset: i64,
    pub lag: i64,
    pub consumer_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LagList {
    pub kind: String,
    pub consumer_group_id: String,
    pub total_lag: i64,
    pub data: Vec<Lag>,
}

/// Per partition the group commits to or is assigned: committed offset, log end and lag.
#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/consumer-groups/{group}/lags", tag = "admin", params(("cluster_id" = String, Path), ("group" = String, Path, description = "Consumer group id")), responses((status = 200, body = LagList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn lags(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((cluster_id, group)): ApiPath<(String, String)>,
) -> Result<Json<LagList>, CoordinatorError> {
    check_cluster(&state, &cluster_id)?;
    let (rows, owners): (BTreeMap<Tp, Option<i64>>, BTreeMap<Tp, String>) = {
        let data = shard.data();
        let g = data
            .groups
            .get(&group)
            .ok_or_else(|| CoordinatorError::GroupNotFound(group.clone()))?;
        let mut rows: BTreeMap<Tp, Option<i64>> = g
            .offsets
            .iter()
            .map(|(tp, c)| (tp.clone(), Some(c.offset)))
            .collect();
        let mut owners = BTreeMap::new();
        for m in g.group.members.values() {
            for tp in &m.assigned {
                rows.entry(tp.clone()).or_insert(None);
                owners.insert(tp.clone(), m.id.clone());
            }
        }
        (rows, owners)
    };
    let mut data = Vec::with_capacity(rows.len());
    let mut total = 0;
    for (tp, committed) in rows {
        let end = state
            .brokers
            .offsets(&tp.0, tp.1, None)
            .await?
            .latest_offset;
        let lag = (end - committed.unwrap_or(0)).max(0);
        total += lag;
        data.push(Lag {
            consumer_id: owners.get(&tp).cloned(),
            topic_name: tp.0,
            partition_id: tp.1,
            current_offset: committed,
            log_end_offset: end,
            lag,
        });
    }
    Ok(Json(LagList {
        kind: "KafkaConsumerLagList".into(),
        consumer_group_id: group,
        total_lag: total,
        data,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// `earliest`, `latest`, `timestamp` or `offsets`.
    pub to: String,
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Topics to reset (all of them: every partition); default: the topics the group has
    /// committed offsets for.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
    /// With `to: offsets`: the offsets to set.
    #[serde(default)]
    pub offsets: Option<Vec<PartitionOffset>>,
}

fn ensure_empty(shard: &Shard, group: &str) -> Result<(), CoordinatorError> {
    let data = shard.data();
    let g = data
        .groups
        .get(group)
        .ok_or_else(|| CoordinatorError::GroupNotFound(group.to_string()))?;
    let active = g.active();
    if active > 0 {
        return Err(CoordinatorError::GroupNotEmpty {
            group: group.to_string(),
            members: active,
        });
    }
    Ok(())
}

#[utoipa::path(post, path = "/v3/clusters/{cluster_id}/consumer-groups/{group}/offsets:reset", tag = "admin", params(("cluster_id" = String, Path), ("group" = String, Path, description = "Consumer group id")), request_body = ResetRequest, responses((status = 200, body = OffsetsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reset_offsets(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((cluster_id, group)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<ResetRequest>,
) -> Result<Json<OffsetsBody>, CoordinatorError> {
    check_cluster(&state, &cluster_id)?;
    ensure_empty(&shard, &group)?;
    let catalog = state.brokers.topics();
    let mut targets: Vec<(Tp, i64)> = Vec::new();
    if request.to == "offsets" {
        let offsets = request
            .offsets
            .as_ref()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                CoordinatorError::InvalidRequest(
                    "to: offsets needs a non-empty offsets list".into(),
                )
            })?;
        for o in offsets {
            let tp = check_partition(&catalog, &o.topic, o.partition)?;
            check_offset(o.offset)?;
            targets.push((tp, o.offset));
        }
    } else {
        if !matches!(request.to.as_str(), "earliest" | "latest" | "timestamp") {
            return Err(CoordinatorError::InvalidRequest(format!(
                "to must be earliest, latest, timestamp or offsets, not {:?}",
                request.to
            )));
        }
        if request.to == "timestamp" && request.timestamp.is_none_or(|t| t < 0) {
            return Err(CoordinatorError::InvalidRequest(
                "to: timestamp needs a non-negative timestamp (ms)".into(),
            ));
        }
        let partitions: Vec<Tp> = match &request.topics {
            Some(topics) => {
                let mut all = Vec::new();
                for topic in topics {
                    let count = catalog
                        .get(topic)
                        .ok_or_else(|| CoordinatorError::TopicNotFound(topic.clone()))?;
                    all.extend((0..*count).map(|p| (topic.clone(), p)));
                }
                all
            }
            None => shard
                .data()
                .groups
                .get(&group)
                .map(|g| g.offsets.keys().cloned().collect())
                .unwrap_or_default(),
        };
        for tp in partitions {
            let offsets = state
                .brokers
                .offsets(
                    &tp.0,
                    tp.1,
                    request.timestamp.filter(|_| request.to == "timestamp"),
                )
                .await?;
            let offset = match request.to.as_str() {
                "earliest" => offsets.earliest_offset,
                "latest" => offsets.latest_offset,
                _ => offsets
                    .offset_for_timestamp
                    .map_or(offsets.latest_offset, |o| o.offset),
            };
            targets.push((tp, offset));
        }
    }
    // Checked again right before writing: a member may have joined during the lookups.
    ensure_empty(&shard, &group)?;
    let offsets = targets
        .iter()
        .map(|(tp, offset)| (tp.clone(), *offset, String::new()))
        .collect();
    shard.commit(&group, offsets).await?;
    Ok(Json(OffsetsBody {
        offsets: targets
            .into_iter()
            .map(|((topic, partition), offset)| PartitionOffset {
                topic,
                partition: i64::from(partition),
                offset,
                metadata: None,
            })
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v3/clusters/{cluster_id}/consumer-groups/{group}", tag = "admin", params(("cluster_id" = String, Path), ("group" = String, Path, description = "Consumer group id")), responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_group(
    State(state): State<AppState>,
    Served(shard): Served,
    ApiPath((cluster_id, group)): ApiPath<(String, String)>,
) -> Result<StatusCode, CoordinatorError> {
    check_cluster(&state, &cluster_id)?;
    ensure_empty(&shard, &group)?;
    let changes: Vec<Change> = {
        let data = shard.data();
        let g = data
            .groups
            .get(&group)
            .ok_or_else(|| CoordinatorError::GroupNotFound(group.clone()))?;
        g.offsets
            .keys()
            .map(|tp| Change::DeleteOffset {
                group: group.clone(),
                tp: tp.clone(),
            })
            .chain(g.instances.keys().map(|name| Change::Instance {
                group: group.clone(),
                name: name.clone(),
                config: None,
            }))
            .collect()
    };
    let owner = group.clone();
    shard
        .write(changes, move |data| {
            data.groups.remove(&owner);
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
