//! The coordinator's view of the brokers: topic metadata from the watched etcd cache, and
//! HTTP calls to brokers for producing to and reading from partitions. Reads go to the
//! partition's leader when known (no forwarding hop); everything fails over to the other
//! brokers, which forward.

use std::collections::BTreeMap;
use std::time::Duration;

use runnel_common::error::{ErrorBody, ErrorCode};
use runnel_common::meta::MetadataCache;
use serde::Deserialize;

use crate::error::{CoordinatorError, code_from_number};

/// One record of a broker's read page; `key`/`value` are `{type, data}` or null.
#[derive(Debug, Deserialize)]
pub struct PageRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<TypedData>,
    pub value: Option<TypedData>,
    #[serde(default)]
    pub headers: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct TypedData {
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Box<serde_json::value::RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub next_offset: i64,
    pub records: Vec<PageRecord>,
}

#[derive(Debug, Deserialize)]
pub struct PartitionOffsets {
    pub earliest_offset: i64,
    pub latest_offset: i64,
    #[serde(default)]
    pub offset_for_timestamp: Option<TimestampOffset>,
}

#[derive(Debug, Deserialize)]
pub struct TimestampOffset {
    pub offset: i64,
}

#[derive(Clone)]
pub struct Brokers {
    pub cache: MetadataCache,
    pub http: reqwest::Client,
}

impl Brokers {
    pub fn cluster_id(&self) -> Result<String, CoordinatorError> {
        self.cache
            .view()
            .cluster_id
            .clone()
            .ok_or_else(|| CoordinatorError::MetadataUnavailable("cluster id unknown yet".into()))
    }

    /// Topic → partition count, as the cluster knows it now.
    pub fn topics(&self) -> BTreeMap<String, u32> {
        self.cache
            .view()
            .topics
            .iter()
            .map(|(name, t)| (name.clone(), t.record.partitions))
            .collect()
    }

    /// Broker URLs to try for `topic`-`partition`: its leader first.
    fn urls_for(&self, topic: Option<(&str, u32)>) -> Vec<String> {
        let view = self.cache.view();
        let leader = topic.and_then(|(t, p)| {
            view.topics
                .get(t)
                .and_then(|t| t.partitions.get(&p))
                .and_then(|s| s.leader)
                .and_then(|id| view.brokers.get(&id))
                .map(|b| b.url.clone())
        });
        let mut urls: Vec<String> = leader.into_iter().collect();
        for broker in view.brokers.values() {
            if !urls.contains(&broker.url) {
                urls.push(broker.url.clone());
            }
        }
        urls
    }

    /// Sends one request to the brokers in turn until one answers with something other than
    /// a retryable error, for at most `deadline`.
    async fn call(
        &self,
        target: Option<(&str, u32)>,
        deadline: Duration,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<axum::body::Bytes, CoordinatorError> {
        let until = tokio::time::Instant::now() + deadline;
        let mut last = CoordinatorError::MetadataUnavailable("no broker is registered".into());
        let mut pause = Duration::from_millis(25);
        loop {
            for url in self.urls_for(target) {
                match build(&self.http, &url).send().await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.bytes().await.unwrap_or_default();
                        if status.is_success() {
                            return Ok(body);
                        }
                        let error = broker_error(status.as_u16(), &body, &url);
                        if !error.code().retryable() {
                            return Err(error);
                        }
                        last = error;
                    }
                    Err(error) => {
                        last = CoordinatorError::Broker {
                            code: ErrorCode::LeaderNotAvailable,
                            message: format!("broker {url} unreachable: {error}"),
                        }
                    }
                }
            }
            if tokio::time::Instant::now() + pause > until {
                return Err(last);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Produces v3 records (a stream: one request, appended together) to `topic` with
    /// `acks=all`; returns each record's offset, or the first error.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        records: &[serde_json::Value],
        deadline: Duration,
    ) -> Result<Vec<i64>, CoordinatorError> {
        #[derive(Deserialize)]
        struct Answer {
            error_code: u32,
            #[serde(default)]
            offset: Option<i64>,
            #[serde(default)]
            message: Option<String>,
        }
        let cluster = self.cluster_id()?;
        let mut body = Vec::new();
        for record in records {
            serde_json::to_writer(&mut body, record)
                .map_err(|e| CoordinatorError::Internal(e.to_string()))?;
            body.push(b'\n');
        }
        let bytes = self
            .call(Some((topic, partition)), deadline, |http, url| {
                http.post(format!(
                    "{url}/v3/clusters/{cluster}/topics/{topic}/records?acks=all"
                ))
                .header("content-type", "application/json")
                .timeout(deadline)
                .body(body.clone())
            })
            .await?;
        // One answer per line, in request order (a single record gets a single object).
        let mut offsets = Vec::with_capacity(records.len());
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let answer: Answer = serde_json::from_slice(line)
                .map_err(|e| CoordinatorError::Internal(format!("bad produce answer: {e}")))?;
            match (answer.error_code, answer.offset) {
                (200, Some(offset)) => offsets.push(offset),
                (code, _) => {
                    return Err(CoordinatorError::Broker {
                        code: code_from_number(code).unwrap_or(ErrorCode::Internal),
                        message: answer.message.unwrap_or_else(|| "write failed".into()),
                    });
                }
            }
        }
        if offsets.len() != records.len() {
            return Err(CoordinatorError::Internal(format!(
                "{} answers for {} records",
                offsets.len(),
                records.len()
            )));
        }
        Ok(offsets)
    }

    /// Reads a page of `topic`-`partition` from `offset`.
    pub async fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
        max_bytes: u64,
        max_wait: Duration,
        format: &str,
    ) -> Result<Page, CoordinatorError> {
        let cluster = self.cluster_id()?;
        let wait_ms = max_wait.as_millis();
        let bytes = self
            .call(Some((topic, partition)), max_wait + Duration::from_secs(5), |http, url| {
                http.get(format!(
                    "{url}/v3/clusters/{cluster}/topics/{topic}/partitions/{partition}/records?offset={offset}&max_bytes={max_bytes}&max_wait_ms={wait_ms}&format={format}"
                ))
                .timeout(max_wait + Duration::from_secs(5))
            })
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CoordinatorError::Internal(format!("bad read answer: {e}")))
    }

    /// The earliest and latest (high watermark) offsets, and the first offset at or after
    /// `timestamp` when given.
    pub async fn offsets(
        &self,
        topic: &str,
        partition: u32,
        timestamp: Option<i64>,
    ) -> Result<PartitionOffsets, CoordinatorError> {
        let cluster = self.cluster_id()?;
        let query = timestamp.map_or(String::new(), |t| format!("?timestamp={t}"));
        let bytes = self
            .call(Some((topic, partition)), Duration::from_secs(5), |http, url| {
                http.get(format!(
                    "{url}/v3/clusters/{cluster}/topics/{topic}/partitions/{partition}/offsets{query}"
                ))
                .timeout(Duration::from_secs(5))
            })
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CoordinatorError::Internal(format!("bad offsets answer: {e}")))
    }

    /// Creates `topic` unless it exists.
    pub async fn ensure_topic(
        &self,
        topic: &str,
        partitions: u32,
        replication_factor: u32,
        configs: &[(&str, &str)],
    ) -> Result<(), CoordinatorError> {
        if self.cache.view().topics.contains_key(topic) {
            return Ok(());
        }
        let cluster = self.cluster_id()?;
        let body = serde_json::json!({
            "topic_name": topic,
            "partitions_count": partitions,
            "replication_factor": replication_factor,
            "configs": configs.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect::<Vec<_>>(),
        });
        match self
            .call(None, Duration::from_secs(10), |http, url| {
                http.post(format!("{url}/v3/clusters/{cluster}/topics"))
                    .json(&body)
                    .timeout(Duration::from_secs(10))
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == ErrorCode::TopicAlreadyExists => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub fn live_brokers(&self) -> usize {
        self.cache.view().brokers.len()
    }
}

/// A broker's error answer as ours, under the broker's code.
fn broker_error(status: u16, body: &[u8], url: &str) -> CoordinatorError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => CoordinatorError::Broker {
            code: code_from_number(error.error_code).unwrap_or(ErrorCode::Internal),
            message: error.message,
        },
        Err(_) => CoordinatorError::Broker {
            code: if status >= 500 {
                ErrorCode::LeaderNotAvailable
            } else {
                ErrorCode::Internal
            },
            message: format!("broker {url} answered {status}"),
        },
    }
}
