//! The follower side of replication: truncate to the leader's epoch boundary, then fetch in a
//! loop, appending the leader's batches as they are and taking its high watermark.
//!
//! The loop runs until the replica's role changes (the task is aborted then). Every call has a
//! timeout; errors back off and retry.

use std::sync::Arc;
use std::time::Duration;

use runnel_common::time::now_ms;
use serde::Deserialize;

use super::Replicator;
use crate::log::batch;
use crate::storage::partition::Partition;

/// Response headers of the replicate endpoint.
pub const HIGH_WATERMARK_HEADER: &str = "x-runnel-high-watermark";
pub const LOG_START_HEADER: &str = "x-runnel-log-start-offset";

/// The answer of the epoch-end endpoint.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct EpochEnd {
    /// The largest epoch at or below the one asked for, or -1 when the leader has none.
    pub leader_epoch: i32,
    /// Where that epoch ends in the leader's log, or -1.
    pub end_offset: i64,
}

enum FetchError {
    /// The leader no longer has the offset this replica would fetch (retention): restart the
    /// log at the leader's log start.
    BehindLogStart(i64),
    /// This replica's log runs past the leader's: truncate to the epoch boundary again.
    Diverged,
    Retry(String),
}

/// Follows `leader` at `url` for `epoch` until aborted.
pub async fn follow(
    ctx: Arc<Replicator>,
    partition: Arc<Partition>,
    leader: u32,
    url: String,
    epoch: u32,
) {
    let mut backoff = Duration::from_millis(50);
    'truncate: loop {
        match truncate_to_leader(&ctx, &partition, &url, epoch).await {
            Ok(()) => {}
            Err(error) => {
                tracing::debug!(topic = %partition.topic, partition = partition.partition, leader, %error, "epoch truncation failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue 'truncate;
            }
        }
        backoff = Duration::from_millis(50);
        loop {
            match fetch_once(&ctx, &partition, &url, epoch).await {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(FetchError::Diverged) => continue 'truncate,
                Err(FetchError::BehindLogStart(log_start)) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.partition, log_start, "behind the leader's log start; restarting the log there");
                    if let Err(error) = partition.reset_to(log_start) {
                        tracing::error!(%error, "cannot reset the log");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Err(FetchError::Retry(error)) => {
                    tracing::debug!(topic = %partition.topic, partition = partition.partition, leader, %error, "fetch failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Cuts this replica's log where its latest epoch ends on the leader (KIP-101), so records
/// only a deposed leader wrote are removed before any fetch.
async fn truncate_to_leader(
    ctx: &Replicator,
    partition: &Partition,
    url: &str,
    epoch: u32,
) -> Result<(), String> {
    let Some((latest, _)) = partition.with_log(|log| log.latest_epoch()) else {
        return Ok(());
    };
    let response = ctx
        .http
        .get(format!(
            "{url}/internal/v1/topics/{}/partitions/{}/epoch-end?leader_epoch={latest}&current_leader_epoch={epoch}",
            partition.topic, partition.partition
        ))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("epoch-end answered {}", response.status()));
    }
    let end: EpochEnd = response.json().await.map_err(|e| e.to_string())?;
    let log_end = partition.log_end();
    let target = if end.leader_epoch < 0 {
        // The leader has nothing from our epochs: only what was committed is safe to keep.
        partition.high_watermark()
    } else {
        // Our own end of the epoch the leader matched, if it is older than our latest.
        let own_end = partition
            .with_log(|log| log.end_offset_for_epoch(end.leader_epoch))
            .map_or(log_end, |(_, own)| own);
        end.end_offset.min(own_end)
    };
    if target < log_end {
        let removed = partition.truncate_to(target).map_err(|e| e.to_string())?;
        tracing::info!(topic = %partition.topic, partition = partition.partition, to = target, removed_bytes = removed, "truncated a divergent tail to the leader's epoch boundary");
    }
    Ok(())
}

async fn fetch_once(
    ctx: &Replicator,
    partition: &Arc<Partition>,
    url: &str,
    epoch: u32,
) -> Result<(), FetchError> {
    let offset = partition.log_end();
    let wait = ctx.settings.fetch_wait;
    let response = ctx
        .http
        .get(format!(
            "{url}/internal/v1/topics/{}/partitions/{}/replicate?replica_id={}&leader_epoch={epoch}&fetch_offset={offset}&max_bytes={}&max_wait_ms={}",
            partition.topic,
            partition.partition,
            ctx.broker_id,
            ctx.settings.fetch_max_bytes,
            wait.as_millis()
        ))
        .timeout(wait + Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    let status = response.status();
    let header = |name: &str| -> Option<i64> {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    let high_watermark = header(HIGH_WATERMARK_HEADER);
    let log_start = header(LOG_START_HEADER);
    if status.as_u16() == 422 {
        return Err(match log_start {
            Some(log_start) if offset < log_start => FetchError::BehindLogStart(log_start),
            _ => FetchError::Diverged,
        });
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(FetchError::Retry(format!(
            "replicate answered {status}: {body}"
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| FetchError::Retry(e.to_string()))?;
    let mut position = 0;
    while position < bytes.len() {
        let header = batch::check(&bytes[position..])
            .map_err(|e| FetchError::Retry(format!("corrupt batch from leader: {e}")))?;
        partition
            .append_replicated(&bytes[position..position + header.size], now_ms())
            .map_err(|e| FetchError::Retry(format!("cannot append replicated batch: {e}")))?;
        position += header.size;
    }
    // What this replica confirms by its next fetch must be as durable as the topic asks.
    ctx.flusher
        .flush_if_due(partition)
        .await
        .map_err(FetchError::Retry)?;
    if let Some(high_watermark) = high_watermark {
        partition.set_follower_high_watermark(high_watermark);
    }
    Ok(())
}
