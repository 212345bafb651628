//! `groups rest-consume`: reading a topic through REST Proxy v2 consumer instances
//! (`/consumers/{g}`), as a curl user would: create instances (`format` binary,
//! `auto.offset.reset` earliest, no auto-commit), subscribe them all, then poll
//! `GET .../records` until every record stored at the start was read or the time is up.
//!
//! Each poll goes broker → coordinator → the partitions' leaders and back, and the
//! coordinator renders the records into the v2 JSON shape (values in base64).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Client;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, json};

use super::{Setup, ms};
use crate::admin;
use crate::cli::{self, ProduceArgs, RestConsumeArgs, RunArgs, TopicArgs};
use crate::engine::Totals;
use crate::http;
use crate::summary::Summary;

/// The v2 media type REST Proxy clients send.
const V2_JSON: &str = "application/vnd.kafka.v2+json";

/// Runs the REST-consume benchmark described by `args`.
pub async fn run(args: RestConsumeArgs) -> Result<Summary, String> {
    let setup = super::setup(&args.target, "rest", args.instances.saturating_add(1)).await?;
    let topic = args.target.topic.as_str();
    let mut ends = end_offsets(&setup, topic).await?;
    let stored: u64 = ends
        .iter()
        .map(|(earliest, latest)| latest - earliest)
        .sum();
    if stored < args.preload {
        let missing = args.preload - stored;
        eprintln!("preloading {missing} records into {topic}");
        preload(&setup, &args, missing).await?;
        ends = end_offsets(&setup, topic).await?;
    }
    let stored: u64 = ends
        .iter()
        .map(|(earliest, latest)| latest - earliest)
        .sum();
    if stored == 0 {
        return Err(format!("topic {topic} is empty: nothing to read"));
    }
    eprintln!(
        "reading {stored} records of {topic} ({} partitions) as group {} with {} instance(s)",
        ends.len(),
        setup.group,
        args.instances
    );

    let setup_start = Instant::now();
    let mut instances = Vec::new();
    let mut outcome = async {
        for i in 0..args.instances {
            let name = format!("bench-{i}");
            create(&setup, &name).await?;
            instances.push(format!(
                "{}/consumers/{}/instances/{name}",
                setup.url, setup.group
            ));
        }
        for base in &instances {
            subscribe(&setup.client, base, topic).await?;
        }
        Ok::<(), String>(())
    }
    .await;
    let setup_ms = ms(setup_start.elapsed());
    let progress = Arc::new(Progress::new(&ends));
    let start = Instant::now();
    let deadline = start + args.duration;
    if outcome.is_ok() {
        let polls: Vec<_> = instances
            .iter()
            .map(|base| {
                let url = format!(
                    "{base}/records?timeout={}&max_bytes={}",
                    args.poll_timeout_ms, args.max_bytes
                );
                tokio::spawn(poll_loop(
                    setup.client.clone(),
                    url,
                    Arc::clone(&progress),
                    start,
                    deadline,
                ))
            })
            .collect();
        for p in polls {
            if let Err(e) = p.await {
                outcome = Err(format!("a poller died: {e}"));
            }
        }
    }
    // Delete the instances whatever happened, so they do not linger until they expire.
    for base in &instances {
        if let Err(e) = http::send(setup.client.delete(base)).await {
            eprintln!("deleting {base}: {e}");
        }
    }
    outcome?;

    let state = progress.lock();
    let end = state.done_at.unwrap_or(state.last_answer.unwrap_or(start));
    let complete = state.done_at.is_some();
    let totals = Totals {
        records: state.records,
        requests: state.latencies.len() as u64,
        bytes: state.value_bytes,
        errors: state.errors,
        first_error: state.first_error.clone(),
        elapsed: end.saturating_duration_since(start),
        latencies: state.latencies.clone(),
    };
    let mut params = Map::new();
    params.insert("group".into(), json!(setup.group));
    params.insert("topic".into(), json!(topic));
    params.insert("partitions".into(), json!(ends.len()));
    params.insert("instances".into(), json!(args.instances));
    params.insert("max_bytes".into(), json!(args.max_bytes));
    params.insert("poll_timeout_ms".into(), json!(args.poll_timeout_ms));
    params.insert("records_stored".into(), json!(stored));
    params.insert("read_all".into(), json!(complete));
    params.insert("empty_polls".into(), json!(state.empty_polls));
    params.insert("setup_ms".into(), json!(setup_ms));
    params.insert(
        "first_poll_ms".into(),
        json!(
            state
                .first_answer
                .map(|t| ms(t.saturating_duration_since(start)))
        ),
    );
    params.insert(
        "records_per_poll".into(),
        json!(if state.latencies.is_empty() {
            0.0
        } else {
            state.records as f64 / state.latencies.len() as f64
        }),
    );
    if !complete {
        eprintln!(
            "read {} of {stored} records in {:?}: not all read",
            state.records, args.duration
        );
    }
    Ok(Summary::new(
        "groups-rest-consume",
        vec![setup.url.clone()],
        params,
        totals,
    ))
}

/// `(earliest, latest)` of every partition of `topic`.
async fn end_offsets(setup: &Setup, topic: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut ends = Vec::with_capacity(setup.partitions as usize);
    for p in 0..setup.partitions {
        let p = i32::try_from(p).map_err(|_| format!("partition {p} out of range"))?;
        match admin::offset_range(&setup.client, &setup.url, &setup.cluster, topic, p).await? {
            Some(r) => ends.push((r.earliest, r.latest.max(r.earliest))),
            None => return Err(format!("partition {p} of {topic} not found")),
        }
    }
    Ok(ends)
}

/// Produces `records` more records into the topic with `runnel-bench produce`'s load loop.
async fn preload(setup: &Setup, args: &RestConsumeArgs, records: u64) -> Result<(), String> {
    let produce = ProduceArgs {
        run: RunArgs {
            url: Some(setup.url.clone()),
            concurrency: 4,
            duration: None,
            warmup: Duration::ZERO,
            timeout_ms: args.target.timeout_ms.max(30_000),
            threads: None,
            json: false,
        },
        topic: TopicArgs {
            topic: args.target.topic.clone(),
            partitions: i32::try_from(setup.partitions).unwrap_or(i32::MAX),
        },
        topic_config: Vec::new(),
        replication_factor: 1,
        recreate: false,
        no_create: false,
        record_size: args.record_size,
        batch_size: 1000,
        acks: cli::Acks::All,
        records: Some(records),
        form: cli::Form::Ndjson,
        keyed: false,
        direct: false,
    };
    let summary = crate::produce::run(produce).await?;
    if summary.errors > 0 {
        return Err(format!(
            "preload: {} produce requests failed (first: {})",
            summary.errors,
            summary.first_error.unwrap_or_default()
        ));
    }
    Ok(())
}

async fn create(setup: &Setup, name: &str) -> Result<(), String> {
    let url = format!("{}/consumers/{}", setup.url, setup.group);
    let body = json!({
        "name": name,
        "format": "binary",
        "auto.offset.reset": "earliest",
        "auto.commit.enable": "false",
    });
    http::send(
        setup
            .client
            .post(&url)
            .header(CONTENT_TYPE, V2_JSON)
            .body(body.to_string()),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("POST {url}: {e}"))
}

async fn subscribe(client: &Client, base: &str, topic: &str) -> Result<(), String> {
    let url = format!("{base}/subscription");
    let body = json!({ "topics": [topic] });
    http::send(
        client
            .post(&url)
            .header(CONTENT_TYPE, V2_JSON)
            .body(body.to_string()),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("POST {url}: {e}"))
}

/// What the pollers found, shared.
struct Progress(Mutex<State>);

struct State {
    /// Per partition: the offset to reach (the log end at the start).
    targets: Vec<u64>,
    /// Per partition: one past the highest offset read.
    reached: Vec<u64>,
    records: u64,
    value_bytes: u64,
    errors: u64,
    first_error: Option<String>,
    empty_polls: u64,
    latencies: Vec<u64>,
    first_answer: Option<Instant>,
    last_answer: Option<Instant>,
    done_at: Option<Instant>,
}

impl Progress {
    fn new(ends: &[(u64, u64)]) -> Self {
        Progress(Mutex::new(State {
            targets: ends.iter().map(|e| e.1).collect(),
            reached: ends.iter().map(|e| e.0).collect(),
            records: 0,
            value_bytes: 0,
            errors: 0,
            first_error: None,
            empty_polls: 0,
            latencies: Vec::new(),
            first_answer: None,
            last_answer: None,
            done_at: None,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a poller panicked; the counts are still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The part of a polled record the bench looks at.
#[derive(Deserialize)]
struct PolledRecord<'a> {
    partition: u32,
    offset: i64,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

/// One instance's polls, one in flight, until everything is read or `deadline`.
async fn poll_loop(
    client: Client,
    url: String,
    progress: Arc<Progress>,
    start: Instant,
    deadline: Instant,
) {
    loop {
        let sent = Instant::now();
        if sent >= deadline || progress.lock().done_at.is_some() {
            return;
        }
        let result = http::send(client.get(&url)).await;
        let answered = Instant::now();
        let page = result.and_then(|body| {
            let records: Vec<PolledRecord> =
                serde_json::from_slice(&body).map_err(|e| format!("bad records answer: {e}"))?;
            Ok(records
                .iter()
                .map(|r| {
                    (
                        r.partition,
                        r.offset,
                        r.value.map_or(0, |v| decoded_len(v.get())),
                    )
                })
                .collect::<Vec<_>>())
        });
        let failed = {
            let mut state = progress.lock();
            if state.done_at.is_some() {
                return;
            }
            record(&mut state, page, sent, answered, start)
        };
        if failed {
            // Do not spin on a failing endpoint.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Counts one poll's answer; `true` when it failed.
fn record(
    state: &mut State,
    page: Result<Vec<(u32, i64, u64)>, String>,
    sent: Instant,
    answered: Instant,
    start: Instant,
) -> bool {
    state.first_answer.get_or_insert(answered);
    state.last_answer = Some(answered);
    let records = match page {
        Ok(records) => records,
        Err(e) => {
            state.errors += 1;
            state.first_error.get_or_insert(e);
            return true;
        }
    };
    if records.is_empty() {
        state.empty_polls += 1;
        return false;
    }
    state.records += records.len() as u64;
    state
        .latencies
        .push(u64::try_from(answered.duration_since(sent).as_nanos()).unwrap_or(u64::MAX));
    for (partition, offset, bytes) in records {
        state.value_bytes += bytes;
        let next = u64::try_from(offset).unwrap_or(0).saturating_add(1);
        if let Some(r) = state.reached.get_mut(partition as usize) {
            *r = (*r).max(next);
        }
    }
    if state
        .reached
        .iter()
        .zip(&state.targets)
        .all(|(r, t)| r >= t)
    {
        state.done_at = Some(answered);
        eprintln!(
            "read everything: {} records in {:.2} s",
            state.records,
            answered.duration_since(start).as_secs_f64()
        );
    }
    false
}

/// Bytes a base64 value (a JSON string) decodes to; the raw length for anything else.
fn decoded_len(raw: &str) -> u64 {
    match raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(b64) => {
            let padding = b64.bytes().rev().take_while(|&b| b == b'=').count().min(2);
            ((b64.len() / 4) * 3).saturating_sub(padding) as u64
        }
        None if raw == "null" => 0,
        None => raw.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(decoded_len("\"aGVsbG8=\""), 5);
        assert_eq!(decoded_len("\"aGk=\""), 2);
        assert_eq!(decoded_len("\"aGVs\""), 3);
        assert_eq!(decoded_len("null"), 0);
        assert_eq!(decoded_len("\"\""), 0);
    }
}
