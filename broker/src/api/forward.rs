//! One-hop forwarding to the broker that leads a partition, so a client may send any request
//! to any broker. A forwarded request carries [`FORWARDED_HEADER`]; a broker that receives one
//! for a partition it does not lead answers `NotLeader` instead of forwarding again, so stale
//! metadata can never make requests loop.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::AppState;
use super::model::AppendResult;
use crate::error::BrokerError;

pub const FORWARDED_HEADER: &str = "x-runnel-forwarded";

/// Whether the request was already forwarded once.
pub fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

fn unreachable_leader(url: &str, error: &reqwest::Error) -> BrokerError {
    BrokerError::MetadataUnavailable(format!("leader at {url} is unreachable: {error}"))
}

/// GETs `path_and_query` from the broker at `url` and relays its answer as is, waiting at
/// most `timeout` for it.
///
/// # Errors
/// [`BrokerError::MetadataUnavailable`] (retryable) when the leader cannot be reached.
pub async fn relay_get(
    state: &AppState,
    url: &str,
    path_and_query: &str,
    timeout: std::time::Duration,
) -> Result<Response, BrokerError> {
    let response = state
        .http
        .get(format!("{url}{path_and_query}"))
        .header(FORWARDED_HEADER, state.broker_id().to_string())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| unreachable_leader(url, &e))?;
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .cloned();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable_leader(url, &e))?;
    let mut relayed = Response::builder().status(status);
    if let Some(content_type) = content_type
        && let Ok(value) = axum::http::HeaderValue::from_bytes(content_type.as_bytes())
    {
        relayed = relayed.header(axum::http::header::CONTENT_TYPE, value);
    }
    relayed
        .body(Body::from(bytes))
        .map_err(|e| BrokerError::Internal(e.to_string()))
}

/// GETs JSON from another broker.
///
/// # Errors
/// [`BrokerError::MetadataUnavailable`] when it cannot be reached or answers with an error.
pub async fn get_json<T: DeserializeOwned>(
    state: &AppState,
    url: &str,
    path: &str,
) -> Result<T, BrokerError> {
    let response = state
        .http
        .get(format!("{url}{path}"))
        .header(FORWARDED_HEADER, state.broker_id().to_string())
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| unreachable_leader(url, &e))?;
    if !response.status().is_success() {
        return Err(BrokerError::MetadataUnavailable(format!(
            "{url}{path} answered {}",
            response.status()
        )));
    }
    response
        .json()
        .await
        .map_err(|e| unreachable_leader(url, &e))
}

/// Sends an encoded batch to the leader's internal append endpoint. A leader that does not
/// know the partition yet (its metadata lags a topic just created or a leadership just moved)
/// is asked again a few times, for at most about two seconds.
///
/// # Errors
/// The leader's error, decoded from its JSON body when it sent one.
pub async fn append_remote(
    state: &AppState,
    url: &str,
    topic: &str,
    partition: u32,
    batch: Vec<u8>,
    acks: super::append::Acks,
) -> Result<AppendResult, BrokerError> {
    let mut delay = std::time::Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match append_remote_once(state, url, topic, partition, batch.clone(), acks).await {
            Err(error @ BrokerError::LeaderNotAvailable { .. }) if attempt >= 6 => {
                return Err(error);
            }
            Err(BrokerError::LeaderNotAvailable { .. }) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
}

async fn append_remote_once(
    state: &AppState,
    url: &str,
    topic: &str,
    partition: u32,
    batch: Vec<u8>,
    acks: super::append::Acks,
) -> Result<AppendResult, BrokerError> {
    let response = state
        .http
        .post(format!(
            "{url}/internal/v1/topics/{topic}/partitions/{partition}/append?acks={}",
            acks.as_query()
        ))
        .header(FORWARDED_HEADER, state.broker_id().to_string())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/vnd.kafka.record-batch",
        )
        .body(batch)
        .send()
        .await
        .map_err(|e| unreachable_leader(url, &e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable_leader(url, &e))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| BrokerError::Internal(format!("bad answer from {url}: {e}")));
    }
    let message = serde_json::from_slice::<runnel_common::error::ErrorBody>(&bytes)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
    let code = serde_json::from_slice::<runnel_common::error::ErrorBody>(&bytes)
        .map(|b| b.error_code)
        .unwrap_or(0);
    // Relay the leader's verdict under the same code, so the producer learns whether the
    // write may have been appended (50305) or surely was not (everything else).
    Err(match code {
        50304 => BrokerError::NotEnoughReplicas {
            topic: topic.to_string(),
            partition,
            isr: 0,
            min_insync: 0,
        },
        50305 => BrokerError::NotEnoughReplicasAfterAppend {
            topic: topic.to_string(),
            partition,
            reason: message,
        },
        // The leader has not seen the topic or partition yet, or is not leader any more.
        40401 | 40402 | 50302 | 42101 => BrokerError::LeaderNotAvailable {
            topic: topic.to_string(),
            partition,
        },
        _ => match status.as_u16() {
            421 | 503 => BrokerError::LeaderNotAvailable {
                topic: topic.to_string(),
                partition,
            },
            413 | 422 => BrokerError::InvalidRequest(message),
            _ => BrokerError::Storage(format!("leader at {url} failed: {message}")),
        },
    })
}
