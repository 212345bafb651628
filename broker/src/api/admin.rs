//! v3 admin: clusters, brokers, topics, partitions, topic configs.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runnel_common::error::ErrorBody;
use runnel_common::meta::store::random_id;
use runnel_common::meta::{ClusterView, PartitionState, TopicRecord, TopicView};

use super::extract::{ApiJson, ApiPath};
use super::forward;
use super::model::*;
use super::state::{AppState, Leadership};
use crate::error::BrokerError;
use crate::topic_config;

/// Kafka's topic name rules: `[a-zA-Z0-9._-]`, 1 to 249 characters, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 249 {
        Some("must be at most 249 characters")
    } else if name == "." || name == ".." {
        Some("must not be '.' or '..'")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        Some("may contain only ASCII letters, digits, '.', '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BrokerError::InvalidRequest(format!(
            "invalid topic name {name:?}: {reason}"
        ))),
        None => Ok(()),
    }
}

fn cluster_data(state: &AppState, view: &ClusterView) -> ClusterData {
    ClusterData {
        kind: "KafkaCluster",
        cluster_id: state.cluster_id.to_string(),
        controller_id: view.controller.as_ref().map(|(c, _)| c.broker_id),
        brokers: broker_data(view),
    }
}

fn broker_data(view: &ClusterView) -> Vec<BrokerData> {
    view.brokers
        .values()
        .map(|b| BrokerData {
            broker_id: b.broker_id,
            url: b.url.clone(),
            rack: b.rack.clone(),
        })
        .collect()
}

fn topic_data(state: &AppState, name: &str, topic: &TopicView) -> TopicData {
    TopicData {
        kind: "KafkaTopic",
        cluster_id: state.cluster_id.to_string(),
        topic_name: name.to_string(),
        topic_id: topic.record.topic_id.clone(),
        is_internal: name.starts_with("__"),
        partitions_count: topic.record.partitions,
        replication_factor: topic.record.replication_factor,
    }
}

#[utoipa::path(get, path = "/v3/clusters", tag = "admin",
    responses((status = 200, body = ClusterList)))]
pub async fn list_clusters(State(state): State<AppState>) -> Json<ClusterList> {
    let view = state.view();
    Json(ClusterList {
        kind: "KafkaClusterList",
        data: vec![cluster_data(&state, &view)],
    })
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}", tag = "admin",
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = ClusterData), (status = 404, body = ErrorBody)))]
pub async fn get_cluster(
    State(state): State<AppState>,
    ApiPath(cluster_id): ApiPath<String>,
) -> Result<Json<ClusterData>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    Ok(Json(cluster_data(&state, &state.view())))
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/brokers", tag = "admin",
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = BrokerList), (status = 404, body = ErrorBody)))]
pub async fn list_brokers(
    State(state): State<AppState>,
    ApiPath(cluster_id): ApiPath<String>,
) -> Result<Json<BrokerList>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    Ok(Json(BrokerList {
        kind: "KafkaBrokerList",
        data: broker_data(&state.view()),
    }))
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics", tag = "admin",
    params(("cluster_id" = String, Path)),
    responses((status = 200, body = TopicList), (status = 404, body = ErrorBody)))]
pub async fn list_topics(
    State(state): State<AppState>,
    ApiPath(cluster_id): ApiPath<String>,
) -> Result<Json<TopicList>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    Ok(Json(TopicList {
        kind: "KafkaTopicList",
        data: view
            .topics
            .iter()
            .map(|(name, t)| topic_data(&state, name, t))
            .collect(),
    }))
}

#[utoipa::path(get, path = "/topics", tag = "v2",
    responses((status = 200, body = Vec<String>)))]
pub async fn list_topic_names(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.view().topics.keys().cloned().collect())
}

#[utoipa::path(post, path = "/v3/clusters/{cluster_id}/topics", tag = "admin",
    params(("cluster_id" = String, Path)),
    request_body = CreateTopicRequest,
    responses((status = 201, body = TopicData), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn create_topic(
    State(state): State<AppState>,
    ApiPath(cluster_id): ApiPath<String>,
    ApiJson(request): ApiJson<CreateTopicRequest>,
) -> Result<Response, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let name = request.topic_name;
    validate_topic_name(&name)?;
    let partitions = request
        .partitions_count
        .unwrap_or(i64::from(state.config.num_partitions));
    if !(1..=100_000).contains(&partitions) {
        return Err(BrokerError::InvalidRequest(format!(
            "partitions_count must be in [1, 100000], not {partitions}"
        )));
    }
    let replication_factor = request
        .replication_factor
        .unwrap_or(i64::from(state.config.default_replication_factor));
    let view = state.view();
    let brokers = state.meta.live_brokers().await?;
    if replication_factor < 1 {
        return Err(BrokerError::InvalidRequest(format!(
            "replication_factor must be at least 1, not {replication_factor}"
        )));
    }
    if brokers.len() < replication_factor as usize {
        return Err(BrokerError::InvalidRequest(format!(
            "replication_factor {replication_factor} exceeds the {} live brokers",
            brokers.len()
        )));
    }
    let mut configs = BTreeMap::new();
    for entry in request.configs {
        let Some(value) = entry.value else {
            return Err(BrokerError::InvalidConfig {
                name: entry.name,
                reason: "value must not be null".into(),
            });
        };
        topic_config::validate(&entry.name, &value)?;
        configs.insert(entry.name, value);
    }
    if view.topics.contains_key(&name) {
        return Err(BrokerError::TopicAlreadyExists(name));
    }
    let record = TopicRecord {
        topic_id: random_id(),
        partitions: partitions as u32,
        replication_factor: replication_factor as u32,
        configs,
    };
    let states = place_replicas(&brokers, 0, record.partitions, replication_factor as usize);
    let revision = state
        .meta
        .create_topic(&name, &record, &states)
        .await
        .map_err(|e| match e {
            runnel_common::meta::MetaError::Conflict { .. } => {
                BrokerError::TopicAlreadyExists(name.clone())
            }
            other => other.into(),
        })?;
    state.wait_applied(revision).await;
    wait_partitions_served(&state, &name, 0..record.partitions).await;
    tracing::info!(topic = %name, partitions, replication_factor, "created topic");
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    Ok((StatusCode::CREATED, Json(topic_data(&state, &name, &topic))).into_response())
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path)),
    responses((status = 200, body = TopicData), (status = 404, body = ErrorBody)))]
pub async fn get_topic(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
) -> Result<Json<TopicData>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    Ok(Json(topic_data(&state, &name, &topic)))
}

#[utoipa::path(delete, path = "/v3/clusters/{cluster_id}/topics/{topic}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_topic(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    let revision = state
        .meta
        .delete_topic(&name, topic.mod_revision)
        .await
        .map_err(|e| match e {
            runnel_common::meta::MetaError::Conflict { .. } => {
                BrokerError::TopicNotFound(name.clone())
            }
            other => other.into(),
        })?;
    state.wait_applied(revision).await;
    tracing::info!(topic = %name, "deleted topic");
    Ok(StatusCode::NO_CONTENT)
}

/// Replica placement for partitions `first..first + count`: partition p's replicas are the
/// brokers following a random start plus p, so leaders (the first replica) and followers
/// spread evenly over the brokers, as Kafka places them.
fn place_replicas(
    brokers: &[u32],
    first: u32,
    count: u32,
    replication_factor: usize,
) -> Vec<PartitionState> {
    let start = rand::random::<u32>() as usize;
    (first..first + count)
        .map(|p| {
            let replicas: Vec<u32> = (0..replication_factor)
                .map(|r| brokers[(start + p as usize + r) % brokers.len()])
                .collect();
            PartitionState {
                leader: replicas.first().copied(),
                leader_epoch: 0,
                isr: replicas.clone(),
                replicas,
            }
        })
        .collect()
}

#[utoipa::path(patch, path = "/v3/clusters/{cluster_id}/topics/{topic}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path)),
    request_body = UpdateTopicRequest,
    responses((status = 200, body = TopicData), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn update_topic(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<UpdateTopicRequest>,
) -> Result<Json<TopicData>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    let current = topic.record.partitions;
    let wanted = request.partitions_count;
    if wanted < i64::from(current) || wanted > 100_000 {
        return Err(BrokerError::InvalidRequest(format!(
            "partitions_count can only grow, up to 100000: {name} has {current}, asked for {wanted}"
        )));
    }
    if wanted > i64::from(current) {
        let brokers = state.meta.live_brokers().await?;
        let replication_factor = topic.record.replication_factor as usize;
        if brokers.len() < replication_factor {
            return Err(BrokerError::InvalidRequest(format!(
                "replication_factor {replication_factor} exceeds the {} live brokers",
                brokers.len()
            )));
        }
        let added = wanted as u32 - current;
        let states = place_replicas(&brokers, current, added, replication_factor);
        let mut record = topic.record.clone();
        record.partitions = wanted as u32;
        let revision = state
            .meta
            .add_partitions(&name, &record, topic.mod_revision, current, &states)
            .await
            .map_err(|e| match e {
                runnel_common::meta::MetaError::Conflict { .. } => {
                    BrokerError::MetadataUnavailable(format!(
                        "topic '{name}' changed meanwhile; retry"
                    ))
                }
                other => other.into(),
            })?;
        state.wait_applied(revision).await;
        wait_partitions_served(&state, &name, current..wanted as u32).await;
        tracing::info!(topic = %name, from = current, to = wanted, "added partitions");
    }
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    Ok(Json(topic_data(&state, &name, &topic)))
}

#[utoipa::path(post, path = "/v3/clusters/{cluster_id}/preferred-leader-election", tag = "admin",
    params(("cluster_id" = String, Path)),
    responses((status = 202, description = "the controller moves leadership to each partition's preferred (first) replica where it is in sync"),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn elect_preferred_leaders(
    State(state): State<AppState>,
    ApiPath(cluster_id): ApiPath<String>,
) -> Result<StatusCode, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let Some((controller, _)) = &view.controller else {
        return Err(BrokerError::MetadataUnavailable(
            "no controller is elected; retry".into(),
        ));
    };
    let Some(url) = view
        .brokers
        .get(&controller.broker_id)
        .map(|b| b.url.clone())
    else {
        return Err(BrokerError::MetadataUnavailable(
            "the controller is not registered; retry".into(),
        ));
    };
    let response = state
        .http
        .post(format!("{url}/internal/v1/controller/elect-preferred"))
        .header(forward::FORWARDED_HEADER, state.broker_id().to_string())
        .send()
        .await
        .map_err(|e| {
            BrokerError::MetadataUnavailable(format!("controller at {url} is unreachable: {e}"))
        })?;
    if response.status().as_u16() != 202 {
        return Err(BrokerError::MetadataUnavailable(format!(
            "controller at {url} answered {}; retry",
            response.status()
        )));
    }
    Ok(StatusCode::ACCEPTED)
}

/// Waits (at most 5 s) until the leaders of `partitions` serve them, so a client that produces
/// right after creating a topic is not told the partition has no leader yet. Past the limit
/// the answer goes out anyway: producers retry 503s.
async fn wait_partitions_served(state: &AppState, name: &str, partitions: std::ops::Range<u32>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut pending: Vec<u32> = partitions.collect();
    while !pending.is_empty() && tokio::time::Instant::now() < deadline {
        let view = state.view();
        let Ok(topic) = state.topic(&view, name) else {
            return;
        };
        let mut still = Vec::new();
        for partition in pending {
            if partition_data(state, &view, name, &topic, partition)
                .await
                .latest_offset
                .is_none()
            {
                still.push(partition);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Describes one partition; offsets come from the leader (asked over HTTP if remote).
async fn partition_data(
    state: &AppState,
    view: &ClusterView,
    name: &str,
    topic: &TopicView,
    partition: u32,
) -> PartitionData {
    let partition_state = topic.partitions.get(&partition);
    let mut data = PartitionData {
        kind: "KafkaPartition".into(),
        cluster_id: state.cluster_id.to_string(),
        topic_name: name.to_string(),
        partition_id: partition,
        leader_id: partition_state.and_then(|s| s.leader),
        leader_epoch: partition_state.map_or(0, |s| s.leader_epoch),
        replicas: partition_state
            .map(|s| s.replicas.clone())
            .unwrap_or_default(),
        isr: partition_state.map(|s| s.isr.clone()).unwrap_or_default(),
        earliest_offset: None,
        latest_offset: None,
    };
    match state.leadership(view, topic, name, partition) {
        Ok(Leadership::Local(local)) => {
            let offsets = local.offsets();
            data.earliest_offset = Some(offsets.log_start);
            data.latest_offset = Some(offsets.high_watermark);
        }
        Ok(Leadership::Remote { url, .. }) => {
            let path = format!(
                "/v3/clusters/{}/topics/{name}/partitions/{partition}",
                state.cluster_id
            );
            if let Ok(remote) = forward::get_json::<PartitionData>(state, &url, &path).await {
                data.earliest_offset = remote.earliest_offset;
                data.latest_offset = remote.latest_offset;
            }
        }
        Err(_) => {}
    }
    data
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}/partitions", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path)),
    responses((status = 200, body = PartitionList), (status = 404, body = ErrorBody)))]
pub async fn list_partitions(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
) -> Result<Json<PartitionList>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    let futures =
        (0..topic.record.partitions).map(|p| partition_data(&state, &view, &name, &topic, p));
    let data = futures_util::future::join_all(futures).await;
    Ok(Json(PartitionList {
        kind: "KafkaPartitionList",
        data,
    }))
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}/partitions/{partition}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ("partition" = i64, Path)),
    responses((status = 200, body = PartitionData), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_partition(
    State(state): State<AppState>,
    ApiPath((cluster_id, name, partition)): ApiPath<(String, String, i64)>,
) -> Result<Json<PartitionData>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    let partition = state.partition_id(&topic, &name, partition)?;
    Ok(Json(
        partition_data(&state, &view, &name, &topic, partition).await,
    ))
}

fn config_data(
    state: &AppState,
    name: &str,
    topic: &TopicView,
    key: &str,
) -> Option<TopicConfigData> {
    let default = topic_config::default_value(state.storage.defaults(), key)?;
    let overridden = topic.record.configs.get(key);
    Some(TopicConfigData {
        kind: "KafkaTopicConfig",
        cluster_id: state.cluster_id.to_string(),
        topic_name: name.to_string(),
        name: key.to_string(),
        value: overridden.cloned().unwrap_or(default),
        is_default: overridden.is_none(),
        is_read_only: false,
        is_sensitive: false,
        source: if overridden.is_some() {
            "DYNAMIC_TOPIC_CONFIG"
        } else {
            "DEFAULT_CONFIG"
        },
    })
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}/configs", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path)),
    responses((status = 200, body = TopicConfigList), (status = 404, body = ErrorBody)))]
pub async fn list_configs(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
) -> Result<Json<TopicConfigList>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    Ok(Json(TopicConfigList {
        kind: "KafkaTopicConfigList",
        data: topic_config::NAMES
            .iter()
            .filter_map(|key| config_data(&state, &name, &topic, key))
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}/configs/{name}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = TopicConfigData), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_config(
    State(state): State<AppState>,
    ApiPath((cluster_id, name, key)): ApiPath<(String, String, String)>,
) -> Result<Json<TopicConfigData>, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let view = state.view();
    let topic = state.topic(&view, &name)?;
    config_data(&state, &name, &topic, &key)
        .map(Json)
        .ok_or_else(|| BrokerError::InvalidConfig {
            name: key,
            reason: format!(
                "unknown topic config; known configs: {}",
                topic_config::NAMES.join(", ")
            ),
        })
}

/// Applies config changes with compare-and-swap, retrying a few times on concurrent changes.
async fn change_configs(
    state: &AppState,
    name: &str,
    changes: &[(String, Option<String>)],
) -> Result<(), BrokerError> {
    for (key, value) in changes {
        match value {
            Some(value) => topic_config::validate(key, value)?,
            None => {
                if topic_config::default_value(state.storage.defaults(), key).is_none() {
                    topic_config::validate(key, "")?;
                }
            }
        }
    }
    for _ in 0..5 {
        let view = state.view();
        let topic = state.topic(&view, name)?;
        let mut record = topic.record.clone();
        for (key, value) in changes {
            match value {
                Some(value) => record.configs.insert(key.clone(), value.clone()),
                None => record.configs.remove(key),
            };
        }
        match state
            .meta
            .update_topic(name, &record, topic.mod_revision)
            .await
        {
            Ok(revision) => {
                state.wait_applied(revision).await;
                return Ok(());
            }
            Err(runnel_common::meta::MetaError::Conflict { .. }) => {
                // Someone changed the topic meanwhile: wait for the newer view and retry.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(BrokerError::MetadataUnavailable(format!(
        "topic '{name}' keeps changing; retry"
    )))
}

#[utoipa::path(put, path = "/v3/clusters/{cluster_id}/topics/{topic}/configs/{name}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ("name" = String, Path)),
    request_body = SetConfigRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_config(
    State(state): State<AppState>,
    ApiPath((cluster_id, name, key)): ApiPath<(String, String, String)>,
    ApiJson(request): ApiJson<SetConfigRequest>,
) -> Result<StatusCode, BrokerError> {
    state.check_cluster(&cluster_id)?;
    change_configs(&state, &name, &[(key, Some(request.value))]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v3/clusters/{cluster_id}/topics/{topic}/configs/{name}", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reset_config(
    State(state): State<AppState>,
    ApiPath((cluster_id, name, key)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, BrokerError> {
    state.check_cluster(&cluster_id)?;
    change_configs(&state, &name, &[(key, None)]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v3/clusters/{cluster_id}/topics/{topic}/configs:alter", tag = "admin",
    params(("cluster_id" = String, Path), ("topic" = String, Path)),
    request_body = AlterConfigsRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn alter_configs(
    State(state): State<AppState>,
    ApiPath((cluster_id, name)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<AlterConfigsRequest>,
) -> Result<StatusCode, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let mut changes = Vec::with_capacity(request.data.len());
    for entry in request.data {
        match entry.operation.as_deref().unwrap_or("SET") {
            "SET" => {
                let value = entry.value.ok_or_else(|| BrokerError::InvalidConfig {
                    name: entry.name.clone(),
                    reason: "SET needs a value".into(),
                })?;
                changes.push((entry.name, Some(value)));
            }
            "DELETE" => changes.push((entry.name, None)),
            other => {
                return Err(BrokerError::InvalidRequest(format!(
                    "operation must be SET or DELETE, not {other:?}"
                )));
            }
        }
    }
    change_configs(&state, &name, &changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::validate_topic_name;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["test", "a.b_c-D9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            "ünicode",
            &"x".repeat(250),
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
