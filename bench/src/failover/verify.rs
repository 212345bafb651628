//! The end check of a failover run: read the partition back and find every acknowledged
//! record exactly once, at the offset its acknowledgement gave.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde::{Deserialize, Serialize};

use super::cluster::{self, Broker};
use super::producer::{self, Ack, PARTITION};
use crate::http;

/// Records asked for per read.
const PAGE_RECORDS: u32 = 5000;
/// Most examples of violations kept.
const MAX_EXAMPLES: usize = 20;

/// What the read-back found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// First offset read (the high watermark before the producers started).
    pub read_from: i64,
    /// The high watermark when the check started (reads stop there).
    pub high_watermark: i64,
    /// Broker the pages were read through (the last one used).
    pub read_via: String,
    /// Records read.
    pub records_read: u64,
    /// Records read that this run wrote (the others come from earlier runs or other writers).
    pub ours: u64,
    /// Offsets missing from the read sequence (read_from..high_watermark).
    pub offset_gaps: u64,
    /// Acknowledged records checked.
    pub acked_records: u64,
    /// Acknowledged records not found.
    pub missing: u64,
    /// Acknowledged records found more than once.
    pub duplicated: u64,
    /// Acknowledged records found once, but at another offset than acknowledged.
    pub misplaced: u64,
    /// Records of failed (unacknowledged) requests found more than once.
    pub unacked_duplicates: u64,
    /// Records of failed requests found once (written, but the producer saw an error).
    pub unacked_found: u64,
    /// The first violations, described.
    pub examples: Vec<String>,
}

impl Verification {
    /// Acknowledged records not readable exactly once at their offset.
    pub fn violations(&self) -> u64 {
        self.missing + self.duplicated + self.misplaced
    }
}

#[derive(Deserialize)]
struct Page {
    next_offset: i64,
    records: Vec<PageRecord>,
}

#[derive(Deserialize)]
struct PageRecord {
    offset: i64,
    value: Option<PageData>,
}

#[derive(Deserialize)]
struct PageData {
    data: serde_json::Value,
}

/// Where one record id was read: first offset, times read, last offset.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: i64,
    count: u32,
    last: i64,
}

/// What to read back and check.
#[derive(Debug, Clone, Copy)]
pub struct ReadBack<'a> {
    /// Brokers to read through (the next one on failure).
    pub brokers: &'a [Broker],
    /// Cluster id for the v3 paths.
    pub cluster_id: &'a str,
    /// The topic (partition 0 is read).
    pub topic: &'a str,
    /// This run's id: values of other runs are not checked.
    pub run_id: &'a str,
    /// First offset to read.
    pub read_from: i64,
    /// Give up past this instant.
    pub deadline: Instant,
}

/// Reads partition 0 from `read_from` to its high watermark and checks `acks` against it.
pub async fn verify(
    client: &Client,
    target: ReadBack<'_>,
    acks: &[Ack],
) -> Result<Verification, String> {
    let ReadBack {
        brokers,
        cluster_id,
        topic,
        run_id,
        read_from,
        deadline,
    } = target;
    let mut v = Verification {
        read_from,
        ..Verification::default()
    };
    let mut at = 0usize;
    let mut last_error = String::new();
    // The high watermark, from whichever broker answers with the leader's offsets.
    let hw = loop {
        if Instant::now() >= deadline {
            return Err(format!(
                "no high watermark before the deadline: {last_error}"
            ));
        }
        let b = &brokers[at % brokers.len()];
        match cluster::partition(client, &b.url, cluster_id, topic, PARTITION).await {
            Ok(p) => match p.latest_offset {
                Some(hw) => break hw,
                None => last_error = format!("{}: no offsets (leader unreachable?)", b.url),
            },
            Err(e) => last_error = e,
        }
        at += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    v.high_watermark = hw;

    let mut seen: HashMap<(u16, u64), Seen> = HashMap::new();
    let mut offset = read_from;
    let mut expected = read_from;
    while offset < hw {
        if Instant::now() >= deadline {
            return Err(format!(
                "read-back not done before the deadline: at offset {offset} of {hw}; {last_error}"
            ));
        }
        let b = &brokers[at % brokers.len()];
        let url = format!(
            "{}/v3/clusters/{cluster_id}/topics/{topic}/partitions/{PARTITION}/records\
             ?offset={offset}&max_records={PAGE_RECORDS}&max_bytes=8388608&format=string",
            b.url
        );
        let page: Page = match http::send(client.get(&url))
            .await
            .and_then(|body| serde_json::from_slice(&body).map_err(|e| format!("bad answer: {e}")))
        {
            Ok(page) => page,
            Err(e) => {
                last_error = format!("GET {url}: {e}");
                at += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        v.read_via = b.url.clone();
        if page.records.is_empty() {
            if page.next_offset > offset {
                offset = page.next_offset;
                continue;
            }
            return Err(format!(
                "GET {url}: no records below the high watermark {hw}"
            ));
        }
        for r in &page.records {
            if r.offset >= hw {
                break;
            }
            if r.offset < expected {
                return Err(format!(
                    "GET {url}: offset {} came again after {}",
                    r.offset,
                    expected - 1
                ));
            }
            v.offset_gaps += u64::try_from(r.offset - expected).unwrap_or(0);
            expected = r.offset + 1;
            v.records_read += 1;
            let id = r
                .value
                .as_ref()
                .and_then(|d| d.data.as_str())
                .and_then(|text| producer::parse_value(run_id, text));
            if let Some(id) = id {
                v.ours += 1;
                seen.entry(id)
                    .and_modify(|s| {
                        s.count += 1;
                        s.last = r.offset;
                    })
                    .or_insert(Seen {
                        first: r.offset,
                        count: 1,
                        last: r.offset,
                    });
            }
        }
        offset = page.next_offset.max(expected);
    }
    v.offset_gaps += u64::try_from(hw - expected).unwrap_or(0);

    for ack in acks {
        for i in 0..ack.records {
            let id = (ack.producer, ack.first_seq + u64::from(i));
            let want = ack.base_offset + i64::from(i);
            v.acked_records += 1;
            let problem = match seen.remove(&id) {
                None => {
                    v.missing += 1;
                    format!("missing: acknowledged at offset {want}, not read")
                }
                Some(s) if s.count > 1 => {
                    v.duplicated += 1;
                    format!(
                        "duplicated: acknowledged at offset {want}, read {} times (offsets {} .. {})",
                        s.count, s.first, s.last
                    )
                }
                Some(s) if s.first != want => {
                    v.misplaced += 1;
                    format!(
                        "misplaced: acknowledged at offset {want}, read at offset {}",
                        s.first
                    )
                }
                Some(_) => continue,
            };
            if v.examples.len() < MAX_EXAMPLES {
                v.examples.push(format!(
                    "record {} ({problem}; request sent to broker {})",
                    producer::record_id(run_id, id.0, id.1),
                    ack.broker
                ));
            }
        }
    }
    // What is left was written by failed requests.
    for s in seen.values() {
        v.unacked_found += 1;
        if s.count > 1 {
            v.unacked_duplicates += 1;
        }
    }
    Ok(v)
}
