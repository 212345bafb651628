//! `runnel-bench groups`: consumer-group benchmarks, all through a broker, which relays group
//! requests to the coordinator owning the group.
//!
//! - `join`: from a member's join to its first heartbeat answer with partitions in it.
//! - `failover`: from a member's last heartbeat (it then falls silent) to the answer that
//!   gives the surviving member every partition.
//! - `commit`: offset commits per second for a group without members.
//! - `rest-consume`: reading a topic through REST consumer instances.
//!
//! Every loop is bounded in count and time; answers from the network are never trusted to
//! be well formed (a bad one is counted as an error).

pub mod commit;
pub mod member;
pub mod rest;
pub mod rounds;

use std::time::Duration;

use rand::Rng;
use reqwest::Client;

use crate::admin::{self, TopicSetup, TopicSpec};
use crate::cli::{self, GroupTarget};
use crate::http;

/// What every group benchmark sets up first: a client, the broker, the topic.
pub struct Setup {
    /// Client with the requested timeout.
    pub client: Client,
    /// The broker base URL used.
    pub url: String,
    /// The cluster id (v3 paths).
    pub cluster: String,
    /// The topic's partition count as the broker reports it.
    pub partitions: u32,
    /// The group id.
    pub group: String,
}

/// Connects to the first broker URL of `target`, creates the topic if missing and picks the
/// group id (`target.group`, else `bench-{mode}-{random}`).
pub async fn setup(target: &GroupTarget, mode: &str, connections: u16) -> Result<Setup, String> {
    let urls = cli::broker_urls(target.url.as_deref())?;
    let url = urls[0].clone();
    let client = http::client(connections, Duration::from_millis(target.timeout_ms))?;
    let cluster = admin::cluster_id(&client, &url)
        .await?
        .ok_or("groups need the v3 API, but GET /v3/clusters answered 404")?;
    let partitions =
        ensure_topic(&client, &url, &cluster, &target.topic, target.partitions).await?;
    Ok(Setup {
        client,
        url,
        cluster,
        partitions,
        group: target.group.clone().unwrap_or_else(|| fresh_group(mode)),
    })
}

/// Creates `topic` with `partitions` partitions if missing and returns its partition count.
pub async fn ensure_topic(
    client: &Client,
    url: &str,
    cluster: &str,
    topic: &str,
    partitions: i32,
) -> Result<u32, String> {
    let spec = TopicSpec {
        name: topic,
        partitions,
        replication_factor: 1,
        configs: &[],
    };
    let setup = admin::ensure_topic(client, url, cluster, &spec, false).await?;
    if setup == TopicSetup::Skipped {
        return Err(format!("{url} has no topic admin API"));
    }
    // The partition count is what the topic has, which for a reused topic may differ.
    #[derive(serde::Deserialize)]
    struct Topic {
        partitions_count: u32,
    }
    let describe = format!("{url}/v3/clusters/{cluster}/topics/{topic}");
    let body = http::send(client.get(&describe))
        .await
        .map_err(|e| format!("GET {describe}: {e}"))?;
    let count = serde_json::from_slice::<Topic>(&body)
        .map_err(|e| format!("GET {describe}: bad answer: {e}"))?
        .partitions_count;
    if count == 0 {
        return Err(format!("topic {topic} has no partitions"));
    }
    if setup == TopicSetup::Reused && i64::from(count) != i64::from(partitions) {
        eprintln!("topic {topic} exists with {count} partitions (not {partitions}): using those");
    }
    Ok(count)
}

/// A group id not used before: `bench-{mode}-{8 hex digits}`.
pub fn fresh_group(mode: &str) -> String {
    format!("bench-{mode}-{:08x}", rand::rng().random::<u32>())
}

/// The `error_code` of an error body, if the text of an [`http`] error carries one.
pub fn error_code(error: &str) -> Option<u32> {
    let start = error.find("\"error_code\"")?;
    let rest = error[start + "\"error_code\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Milliseconds of a duration, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_found_in_error_text() {
        let e = r#"HTTP 409 Conflict: {"error_code": 40903,"message":"stale"}"#;
        assert_eq!(error_code(e), Some(40903));
        assert_eq!(error_code(r#"{"error_code":40406}"#), Some(40406));
        assert_eq!(error_code("connection refused"), None);
        assert_eq!(error_code(r#"{"error_code": null}"#), None);
    }

    #[test]
    fn fresh_groups_differ() {
        let a = fresh_group("join");
        assert!(a.starts_with("bench-join-") && a.len() == "bench-join-".len() + 8);
        assert_ne!(a, fresh_group("join"));
    }
}
