//! The admin calls the bench makes before loading: cluster id lookup, topic
//! creation (reuse, re-create, or skip on servers without the v3 API) and
//! partition offset ranges.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::http;

/// What happened to the topic before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicSetup {
    /// Created by this run.
    Created,
    /// Already there and reused.
    Reused,
    /// Deleted and created again (`--recreate`).
    Recreated,
    /// The server has no admin API (404), or `--no-create` was given.
    Skipped,
}

/// The topic to create if missing.
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Topic configs as name/value pairs.
    pub configs: &'a [(String, String)],
}

/// The id of the cluster behind `base`, or `None` when the server answers
/// 404 (it has no v3 admin API, e.g. runnel-baseline).
pub async fn cluster_id(client: &Client, base: &str) -> Result<Option<String>, String> {
    #[derive(Deserialize)]
    struct Clusters {
        data: Vec<Cluster>,
    }
    #[derive(Deserialize)]
    struct Cluster {
        cluster_id: String,
    }
    let url = format!("{base}/v3/clusters");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", http::describe(&e)))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = http::body(resp)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let clusters: Clusters =
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: bad answer: {e}"))?;
    match clusters.data.into_iter().next() {
        Some(c) => Ok(Some(c.cluster_id)),
        None => Err(format!("GET {url}: no cluster listed")),
    }
}

/// Creates the topic; an existing one is reused, or deleted and created
/// again when `recreate` is set. A 404 from the create call means the
/// server has no admin API, and the topic is left alone.
pub async fn ensure_topic(
    client: &Client,
    base: &str,
    cluster: &str,
    spec: &TopicSpec<'_>,
    recreate: bool,
) -> Result<TopicSetup, String> {
    match create_topic(client, base, cluster, spec).await? {
        StatusCode::NOT_FOUND => return Ok(TopicSetup::Skipped),
        StatusCode::CONFLICT => {}
        _ => return Ok(TopicSetup::Created),
    }
    if !recreate {
        return Ok(TopicSetup::Reused);
    }
    let url = format!("{base}/v3/clusters/{cluster}/topics/{}", spec.name);
    http::send(client.delete(&url))
        .await
        .map_err(|e| format!("DELETE {url}: {e}"))?;
    // Deletion may finish in the background: retry the create for a while.
    for _ in 0..50 {
        if create_topic(client, base, cluster, spec).await? != StatusCode::CONFLICT {
            return Ok(TopicSetup::Recreated);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "topic {} still exists 10 s after its deletion",
        spec.name
    ))
}

/// How long a create call is retried while the cluster answers 503 (no controller elected
/// yet, brokers still registering: the first seconds after a cluster starts).
const CREATE_RETRY_FOR: Duration = Duration::from_secs(30);

/// One create call, retried while the answer is 503: the status for 2xx, 404 and 409, an
/// error otherwise.
async fn create_topic(
    client: &Client,
    base: &str,
    cluster: &str,
    spec: &TopicSpec<'_>,
) -> Result<StatusCode, String> {
    let start = std::time::Instant::now();
    loop {
        match create_topic_once(client, base, cluster, spec).await {
            Err((Some(StatusCode::SERVICE_UNAVAILABLE), _))
                if start.elapsed() < CREATE_RETRY_FOR =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other.map_err(|(_, e)| e),
        }
    }
}

/// One create call: the status for 2xx, 404 and 409, else the status (if any) and an error.
async fn create_topic_once(
    client: &Client,
    base: &str,
    cluster: &str,
    spec: &TopicSpec<'_>,
) -> Result<StatusCode, (Option<StatusCode>, String)> {
    let url = format!("{base}/v3/clusters/{cluster}/topics");
    let configs: Vec<_> = spec
        .configs
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    let body = json!({
        "topic_name": spec.name,
        "partitions_count": spec.partitions,
        "replication_factor": spec.replication_factor,
        "configs": configs,
    });
    let resp = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| (None, format!("POST {url}: {}", http::describe(&e))))?;
    let status = resp.status();
    if status.is_success() || status == StatusCode::NOT_FOUND || status == StatusCode::CONFLICT {
        // Drain the body so the connection can be reused.
        let _ = resp.bytes().await;
        return Ok(status);
    }
    let text = resp.bytes().await.unwrap_or_default();
    Err((
        Some(status),
        format!("POST {url}: {}", http::status_error(status, &text)),
    ))
}

/// The offsets a partition holds: `earliest..latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    /// Partition id.
    pub partition: i32,
    /// First offset still stored.
    pub earliest: u64,
    /// Offset the next record will get.
    pub latest: u64,
}

/// The offset range of one partition, or `None` if the partition is unknown (404).
pub async fn offset_range(
    client: &Client,
    base: &str,
    cluster: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<OffsetRange>, String> {
    #[derive(Deserialize)]
    struct Partition {
        earliest_offset: u64,
        latest_offset: u64,
    }
    let url = format!("{base}/v3/clusters/{cluster}/topics/{topic}/partitions/{partition}");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", http::describe(&e)))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = http::body(resp)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let p: Partition =
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: bad answer: {e}"))?;
    Ok(Some(OffsetRange {
        partition,
        earliest: p.earliest_offset,
        latest: p.latest_offset,
    }))
}

/// The base URL of each partition's leader, in partition order.
pub async fn leader_urls(
    client: &Client,
    base: &str,
    cluster: &str,
    topic: &str,
) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Brokers {
        data: Vec<Broker>,
    }
    #[derive(Deserialize)]
    struct Broker {
        broker_id: u32,
        url: String,
    }
    #[derive(Deserialize)]
    struct Partitions {
        data: Vec<Partition>,
    }
    #[derive(Deserialize)]
    struct Partition {
        leader_id: Option<u32>,
    }
    let get = |url: String| async move {
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", http::describe(&e)))?;
        http::body(resp)
            .await
            .map_err(|e| format!("GET {url}: {e}"))
    };
    let brokers: Brokers =
        serde_json::from_slice(&get(format!("{base}/v3/clusters/{cluster}/brokers")).await?)
            .map_err(|e| format!("bad brokers answer: {e}"))?;
    let partitions: Partitions = serde_json::from_slice(
        &get(format!(
            "{base}/v3/clusters/{cluster}/topics/{topic}/partitions"
        ))
        .await?,
    )
    .map_err(|e| format!("bad partitions answer: {e}"))?;
    partitions
        .data
        .iter()
        .enumerate()
        .map(|(p, partition)| {
            let leader = partition
                .leader_id
                .ok_or(format!("partition {p} has no leader"))?;
            brokers
                .data
                .iter()
                .find(|b| b.broker_id == leader)
                .map(|b| b.url.trim_end_matches('/').to_string())
                .ok_or(format!(
                    "leader {leader} of partition {p} is not registered"
                ))
        })
        .collect()
}
