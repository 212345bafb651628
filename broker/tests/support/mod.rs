//! Helpers shared by the broker's integration tests: a real etcd and real broker processes
//! (from `runnel-testkit`), and small typed calls of the HTTP API.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::StatusCode;
use runnel_testkit::Cluster;
use serde_json::{Value, json};

/// Starts etcd and `brokers` brokers with extra broker `args`.
pub async fn cluster(brokers: u32, args: &[&str]) -> Cluster {
    Cluster::builder()
        .brokers(brokers)
        .broker_bin(env!("CARGO_BIN_EXE_runnel-broker"))
        .broker_args(args)
        .start()
        .await
        .expect("cluster starts")
}

/// A thin client of one broker.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub cluster_id: String,
}

impl Api {
    pub fn new(cluster: &Cluster, broker_index: usize) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: cluster.broker_urls()[broker_index].clone(),
            cluster_id: cluster.cluster_id().to_string(),
        }
    }

    pub fn topics_url(&self) -> String {
        format!("{}/v3/clusters/{}/topics", self.base, self.cluster_id)
    }

    pub fn topic_url(&self, topic: &str) -> String {
        format!("{}/{topic}", self.topics_url())
    }

    pub async fn create_topic(&self, topic: &str, partitions: u32, configs: &[(&str, &str)]) {
        self.create_replicated_topic(topic, partitions, 1, configs)
            .await;
    }

    pub async fn create_replicated_topic(
        &self,
        topic: &str,
        partitions: u32,
        replication_factor: u32,
        configs: &[(&str, &str)],
    ) {
        let configs: Vec<Value> = configs
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        let body = json!({
            "topic_name": topic,
            "partitions_count": partitions,
            "replication_factor": replication_factor,
            "configs": configs,
        });
        let (status, answer) = self.post_json(&self.topics_url(), &body).await;
        assert_eq!(status, StatusCode::CREATED, "create {topic}: {answer}");
    }

    pub async fn get(&self, url: &str) -> (StatusCode, Value) {
        let response = self.http.get(url).send().await.expect("request");
        decode(response).await
    }

    pub async fn post_json(&self, url: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .expect("request");
        decode(response).await
    }

    pub async fn post_raw(
        &self,
        url: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        decode(response).await
    }

    /// Produces one v3 record and returns (partition, offset).
    pub async fn produce(&self, topic: &str, record: Value) -> (u32, i64) {
        let (status, body) = self
            .post_json(&format!("{}/records", self.topic_url(topic)), &record)
            .await;
        assert_eq!(status, StatusCode::OK, "produce: {body}");
        (
            body["partition_id"].as_u64().expect("partition") as u32,
            body["offset"].as_i64().expect("offset"),
        )
    }

    /// Reads a page from `offset` (a number, `earliest` or `latest`) with extra query text.
    pub async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: &str,
        extra: &str,
    ) -> (StatusCode, Value) {
        self.get(&format!(
            "{}/partitions/{partition}/records?offset={offset}{extra}",
            self.topic_url(topic)
        ))
        .await
    }

    /// Reads every record of a partition below the high watermark.
    pub async fn read_all(&self, topic: &str, partition: u32) -> Vec<Value> {
        let mut records = Vec::new();
        let mut offset = "earliest".to_string();
        for _ in 0..100_000 {
            let (status, page) = self
                .read(topic, partition, &offset, "&max_bytes=1048576")
                .await;
            assert_eq!(status, StatusCode::OK, "read: {page}");
            let batch = page["records"].as_array().expect("records").clone();
            let next = page["next_offset"].as_i64().expect("next");
            if batch.is_empty() {
                break;
            }
            records.extend(batch);
            offset = next.to_string();
        }
        records
    }

    pub async fn partition(&self, topic: &str, partition: u32) -> Value {
        let (status, body) = self
            .get(&format!("{}/partitions/{partition}", self.topic_url(topic)))
            .await;
        assert_eq!(status, StatusCode::OK, "partition: {body}");
        body
    }
}

/// Polls `check` every 100 ms for at most `limit`; whether it ever held.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn decode(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

/// Asserts an error answer: status and JSON `error_code`.
pub fn assert_error(result: &(StatusCode, Value), status: u16, code: u64) {
    assert_eq!(
        result.0.as_u16(),
        status,
        "unexpected status, body {}",
        result.1
    );
    assert_eq!(
        result.1["error_code"].as_u64(),
        Some(code),
        "unexpected body {}",
        result.1
    );
    assert!(
        result.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {}",
        result.1
    );
}
