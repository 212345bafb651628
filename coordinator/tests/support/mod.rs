//! Helpers shared by the coordinator's integration tests: a real etcd, brokers and
//! coordinators (from `runnel-testkit`), and a thin client that goes through a broker.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use runnel_testkit::Cluster;
use serde_json::{Value, json};

const V2_JSON: &str = "application/json";

/// Starts etcd, `brokers` brokers and `coordinators` coordinators (4 group shards).
pub async fn cluster(brokers: u32, coordinators: u32) -> Cluster {
    cluster_with(brokers, coordinators, &["--instance-timeout-ms", "60000"]).await
}

/// Like [`cluster`], with extra coordinator arguments.
pub async fn cluster_with(brokers: u32, coordinators: u32, args: &[&str]) -> Cluster {
    Cluster::builder()
        .brokers(brokers)
        .coordinators(coordinators)
        .coordinator_bin(env!("CARGO_BIN_EXE_runnel-coordinator"))
        .coordinator_args(&["--offsets-topic-partitions", "4"])
        .coordinator_args(args)
        .start()
        .await
        .expect("cluster starts")
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cluster_id: String,
}

impl Client {
    pub fn new(cluster: &Cluster, broker: usize) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: cluster.broker_urls()[broker].clone(),
            cluster_id: cluster.cluster_id().to_string(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", V2_JSON)
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Retries while the group's shard is being claimed or taken over (503).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, value) = self.send(method.clone(), path, body.clone()).await;
            if status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                return (status, value);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn create_topic(&self, topic: &str, partitions: u32, replication: u32) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v3/clusters/{}/topics", self.cluster_id),
                Some(json!({"topic_name": topic, "partitions_count": partitions, "replication_factor": replication})),
            )
            .await;
        assert!(status.is_success(), "create topic: {status} {body}");
    }

    /// Produces JSON records `{"n": i}` for `from..from + count` to `topic`, round-robin
    /// over `partitions`, retrying the records a failover refused (a v2 answer is 200 with
    /// per-record errors).
    pub async fn produce(&self, topic: &str, partitions: u32, from: usize, count: usize) {
        let mut pending: Vec<usize> = (from..from + count).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "records {pending:?} never acknowledged"
            );
            let records: Vec<Value> = pending
                .iter()
                .map(|n| json!({"value": {"n": n}, "partition": *n as u32 % partitions}))
                .collect();
            let response = self
                .http
                .post(format!("{}/topics/{topic}", self.base))
                .header("content-type", "application/vnd.kafka.json.v2+json")
                .body(json!({ "records": records }).to_string())
                .send()
                .await
                .expect("produce");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let offsets = body["offsets"].as_array().cloned().unwrap_or_default();
            if offsets.len() == pending.len() {
                pending = pending
                    .into_iter()
                    .zip(offsets)
                    .filter(|(_, o)| o["offset"].is_null())
                    .map(|(n, _)| n)
                    .collect();
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    pub async fn instance(&self, group: &str, name: &str, auto_commit: bool) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/consumers/{group}?"),
                Some(json!({"name": name, "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": auto_commit.to_string()})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "create instance: {body}");
        assert!(
            body["base_uri"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/consumers/{group}/instances/{name}")))
        );
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/consumers/{group}/instances/{name}/subscription"),
                Some(json!({"topics": ["t"]})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "subscribe: {body}");
    }

    /// One poll: (partition, offset, n) per record.
    pub async fn poll(&self, group: &str, name: &str) -> Vec<(u32, i64, u64)> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/consumers/{group}/instances/{name}/records?timeout=200"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "poll {name}: {body}");
        body.as_array()
            .expect("array")
            .iter()
            .map(|r| {
                (
                    r["partition"].as_u64().expect("partition") as u32,
                    r["offset"].as_i64().expect("offset"),
                    r["value"]["n"].as_u64().expect("n"),
                )
            })
            .collect()
    }

    pub async fn assigned(&self, group: &str, name: &str) -> BTreeSet<u32> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/consumers/{group}/instances/{name}/assignments"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| p["partition"].as_u64().expect("p") as u32)
            .collect()
    }
}

/// The group's committed offsets by partition (of any topic).
pub async fn committed(c: &Client, group: &str) -> BTreeMap<u64, i64> {
    let (status, body) = c
        .call(
            reqwest::Method::GET,
            &format!("/v1/groups/{group}/offsets"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|o| {
            (
                o["partition"].as_u64().expect("p"),
                o["offset"].as_i64().expect("o"),
            )
        })
        .collect()
}

/// Polls every instance round-robin until `want` distinct records arrived or 30 s passed;
/// returns per instance what it got.
pub async fn drain(
    client: &Client,
    group: &str,
    names: &[&str],
    want: usize,
) -> BTreeMap<String, Vec<(u32, i64, u64)>> {
    let mut got: BTreeMap<String, Vec<(u32, i64, u64)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.values().map(Vec::len).sum::<usize>() < want && Instant::now() < deadline {
        for name in names {
            let records = client.poll(group, name).await;
            got.entry(name.to_string()).or_default().extend(records);
        }
    }
    got
}
