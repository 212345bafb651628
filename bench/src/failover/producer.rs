//! The failover load: producers writing to partition 0 with `acks=all` through brokers that
//! do not lead it, each record carrying a unique id, and the log of every acknowledged
//! request (when it was sent, when its answer came, where its records landed) and of every
//! failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use reqwest::Client;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use super::cluster::Broker;
use crate::http;

/// The partition every record goes to.
pub const PARTITION: u32 = 0;

/// One acknowledged produce request.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// When the request was handed to the HTTP client.
    pub sent: Instant,
    /// When its answer had been read.
    pub answered: Instant,
    /// The producer that sent it.
    pub producer: u16,
    /// Sequence number of its first record (the others follow, one each).
    pub first_seq: u64,
    /// Records it carried.
    pub records: u32,
    /// Offset of its first record (the others follow, one each).
    pub base_offset: i64,
    /// The broker it was sent to.
    pub broker: u32,
}

/// One failed produce request.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When the request was sent.
    pub sent: Instant,
    /// When it failed.
    pub at: Instant,
    /// The broker it was sent to.
    pub broker: u32,
    /// A short class: `HTTP 503 / 50302`, `code 50302`, `connect`, `timeout`...
    pub kind: String,
    /// The whole error.
    pub message: String,
}

/// What the producers record.
#[derive(Debug, Default)]
pub struct Log {
    /// Acknowledged requests, in the order their answers were logged.
    pub acks: Vec<Ack>,
    /// Failed requests.
    pub failures: Vec<Failure>,
}

/// State the producers share with the rounds.
pub struct Shared {
    /// Reference instant for the atomics below.
    pub t0: Instant,
    /// All brokers, in id order.
    pub brokers: Vec<Broker>,
    /// Brokers not to send to: the current leader and a killed broker.
    pub avoid: RwLock<Vec<u32>>,
    /// Set to stop the producers.
    pub stop: AtomicBool,
    /// Everything acknowledged or failed.
    pub log: Mutex<Log>,
    /// Latest send instant (ns after `t0`) of any acknowledged request, plus one.
    pub latest_acked_sent: AtomicU64,
    /// Latest answer instant (ns after `t0`) of any acknowledged request, plus one.
    pub latest_answer: AtomicU64,
    /// Records acknowledged so far.
    pub acked_records: AtomicU64,
    /// Requests failed so far.
    pub failed: AtomicU64,
}

impl Shared {
    /// Fresh state for `brokers`.
    pub fn new(brokers: Vec<Broker>) -> Self {
        Shared {
            t0: Instant::now(),
            brokers,
            avoid: RwLock::new(Vec::new()),
            stop: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
            latest_acked_sent: AtomicU64::new(0),
            latest_answer: AtomicU64::new(0),
            acked_records: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// `at` as ns after `t0`, plus one (so that 0 means "never").
    pub fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.t0).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Replaces the set of brokers producers keep away from.
    pub fn set_avoid(&self, ids: &[u32]) {
        let mut avoid = self.avoid.write().unwrap_or_else(|p| p.into_inner());
        avoid.clear();
        avoid.extend_from_slice(ids);
    }

    /// The log, locked.
    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Index of the first broker at or after `from` (cyclically) not to avoid; `from` if all are.
    fn pick(&self, from: usize) -> usize {
        let avoid = self.avoid.read().unwrap_or_else(|p| p.into_inner());
        let n = self.brokers.len();
        (0..n)
            .map(|k| (from + k) % n)
            .find(|&i| !avoid.contains(&self.brokers[i].id))
            .unwrap_or(from % n)
    }
}

/// How the producers write.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Topic name.
    pub topic: String,
    /// Records per request.
    pub batch: u32,
    /// Serialized size of each value.
    pub record_size: usize,
    /// Random id of this run, the first part of every value.
    pub run_id: String,
}

/// A random run id: 8 alphanumerics.
pub fn new_run_id() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(8)
        .map(char::from)
        .collect()
}

/// The id part of the value of record `seq` of `producer` in run `run`.
pub fn record_id(run: &str, producer: u16, seq: u64) -> String {
    format!("{run}-{producer:x}-{seq:x}")
}

/// Reads `(producer, seq)` back from a stored value (with or without its JSON quotes) of
/// run `run`; `None` for values of other runs or other writers.
pub fn parse_value(run: &str, value: &str) -> Option<(u16, u64)> {
    let text = value.trim_matches('"');
    let rest = text.strip_prefix(run)?.strip_prefix('-')?;
    let (producer, rest) = rest.split_once('-')?;
    let seq = rest.trim_end_matches('.');
    Some((
        u16::from_str_radix(producer, 16).ok()?,
        u64::from_str_radix(seq, 16).ok()?,
    ))
}

/// The NDJSON body of `records` records of `producer` from `first_seq` on, all to partition 0,
/// each value a JSON string of exactly `record_size` bytes (quotes included) when the id fits.
pub fn body(settings: &Settings, producer: u16, first_seq: u64, records: u32) -> String {
    let mut s = String::with_capacity(records as usize * (settings.record_size + 32));
    for i in 0..u64::from(records) {
        let id = record_id(&settings.run_id, producer, first_seq + i);
        s.push_str("{\"value\":\"");
        s.push_str(&id);
        let pad = settings.record_size.saturating_sub(id.len() + 2);
        s.extend(std::iter::repeat_n('.', pad));
        s.push_str("\",\"partition\":");
        s.push_str(&PARTITION.to_string());
        s.push_str("}\n");
    }
    s
}

/// The answer to an NDJSON produce: one entry per partition.
#[derive(Deserialize)]
struct Answer {
    partitions: Vec<PartitionAnswer>,
}

#[derive(Deserialize)]
struct PartitionAnswer {
    partition: u32,
    base_offset: Option<i64>,
    last_offset: Option<i64>,
    record_count: usize,
    error_code: Option<u32>,
    message: Option<String>,
}

/// An error answer: `{"error_code": N, "message": "..."}`.
#[derive(Deserialize)]
struct ErrorAnswer {
    error_code: Option<u32>,
}

/// Checks an HTTP 200 answer to a request of `records` records: the base offset, or the
/// failure's kind and message.
fn check_answer(body: &[u8], records: u32) -> Result<i64, (String, String)> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| ("bad answer".to_owned(), format!("{e}: {}", text())))?;
    let Some(p) = answer.partitions.iter().find(|p| p.partition == PARTITION) else {
        return Err(("bad answer".into(), format!("no partition 0: {}", text())));
    };
    if let Some(code) = p.error_code {
        let message = p.message.clone().unwrap_or_default();
        return Err((format!("code {code}"), format!("code {code}: {message}")));
    }
    match (p.base_offset, p.last_offset) {
        (Some(base), Some(last))
            if p.record_count == records as usize && last - base + 1 == i64::from(records) =>
        {
            Ok(base)
        }
        _ => Err((
            "bad answer".into(),
            format!("offsets do not match {records} records: {}", text()),
        )),
    }
}

/// A short class for a transport error.
fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// Sends one request; its base offset, or the failure's kind and message.
async fn send(
    client: &Client,
    url: &str,
    body: String,
    records: u32,
) -> Result<i64, (String, String)> {
    let resp = client
        .post(url)
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| (transport_kind(&e), http::describe(&e)))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| (transport_kind(&e), http::describe(&e)))?;
    if !status.is_success() {
        let code = serde_json::from_slice::<ErrorAnswer>(&bytes)
            .ok()
            .and_then(|a| a.error_code)
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        return Err((
            format!("HTTP {} / {code}", status.as_u16()),
            http::status_error(status, &bytes),
        ));
    }
    check_answer(&bytes, records)
}

/// One producer: request after request until told to stop. After a failure it pauses
/// 20–50 ms and moves on to the next broker; it never sends to a broker in `avoid`.
pub async fn produce(shared: Arc<Shared>, client: Client, settings: Arc<Settings>, producer: u16) {
    let n = shared.brokers.len();
    let urls: Vec<String> = shared
        .brokers
        .iter()
        .map(|b| format!("{}/topics/{}?acks=all", b.url, settings.topic))
        .collect();
    let mut at = usize::from(producer) % n;
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        at = shared.pick(at);
        let broker = shared.brokers[at].id;
        let body = body(&settings, producer, seq, settings.batch);
        let first_seq = seq;
        seq += u64::from(settings.batch);
        let sent = Instant::now();
        let result = send(&client, &urls[at], body, settings.batch).await;
        let answered = Instant::now();
        match result {
            Ok(base_offset) => {
                shared
                    .latest_acked_sent
                    .fetch_max(shared.stamp(sent), Ordering::Relaxed);
                shared
                    .latest_answer
                    .fetch_max(shared.stamp(answered), Ordering::Relaxed);
                shared
                    .acked_records
                    .fetch_add(u64::from(settings.batch), Ordering::Relaxed);
                shared.log().acks.push(Ack {
                    sent,
                    answered,
                    producer,
                    first_seq,
                    records: settings.batch,
                    base_offset,
                    broker,
                });
            }
            Err((kind, message)) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared.log().failures.push(Failure {
                    sent,
                    at: answered,
                    broker,
                    kind,
                    message,
                });
                let pause = rand::rng().random_range(20..=50);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                at = (at + 1) % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            topic: "t".into(),
            batch: 3,
            record_size: 100,
            run_id: "AbC12345".into(),
        }
    }

    #[test]
    fn values_have_the_size_and_parse_back() {
        let s = settings();
        let text = body(&s, 7, 0xffff_ffff, 3);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, line) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["partition"], 0);
            let value = v["value"].to_string();
            assert_eq!(value.len(), 100);
            assert_eq!(
                parse_value("AbC12345", &value),
                Some((7, 0xffff_ffff + i as u64))
            );
            assert_eq!(
                parse_value("AbC12345", v["value"].as_str().unwrap()),
                Some((7, 0xffff_ffff + i as u64))
            );
        }
        assert_eq!(parse_value("other123", "\"AbC12345-1-2\""), None);
        assert_eq!(parse_value("AbC12345", "\"AbC12345-x-2\""), None);
        // The longest id still fits the smallest allowed record size.
        assert!(record_id("AbC12345", u16::MAX, u64::MAX).len() + 2 <= 32);
    }

    #[test]
    fn answers_are_checked() {
        let ok = br#"{"partitions":[{"partition":0,"base_offset":10,"last_offset":12,"record_count":3,"error_code":null,"message":null}]}"#;
        assert_eq!(check_answer(ok, 3), Ok(10));
        assert!(check_answer(ok, 2).is_err());
        let failed = br#"{"partitions":[{"partition":0,"base_offset":null,"last_offset":null,"record_count":3,"error_code":50302,"message":"no leader"}]}"#;
        let (kind, message) = check_answer(failed, 3).unwrap_err();
        assert_eq!(kind, "code 50302");
        assert!(message.contains("no leader"));
        assert_eq!(check_answer(b"nope", 1).unwrap_err().0, "bad answer");
    }

    #[test]
    fn pick_skips_avoided_brokers() {
        let brokers = (1..=3)
            .map(|id| Broker {
                id,
                url: format!("http://h:{id}"),
            })
            .collect();
        let shared = Shared::new(brokers);
        assert_eq!(shared.pick(0), 0);
        shared.set_avoid(&[1]);
        assert_eq!(shared.pick(0), 1);
        shared.set_avoid(&[2, 3]);
        assert_eq!(shared.pick(1), 0);
        shared.set_avoid(&[1, 2, 3]);
        assert_eq!(shared.pick(2), 2);
    }
}
