//! Log compaction against a real broker process.
//!
//! Contract pinned here: once the cleaner has run over a compacted topic, reading it from the
//! start returns exactly the latest record of every key, in offset order, at the offsets they
//! were acknowledged with; a tombstone stays readable until `delete.retention.ms` after its
//! timestamp and is gone after; a SIGKILL and restart change nothing of that. Compacted topics
//! refuse records without a key (42207), and bad compaction configs are refused (42206).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, assert_error, cluster, eventually};

const TOPIC: &str = "compacted";
const KEYS: usize = 10;
const ROUNDS: usize = 20;
/// Keys deleted by a tombstone at the end.
const DELETED: [&str; 2] = ["k0", "k1"];
const DELETE_RETENTION_MS: u64 = 8000;

/// Produces the records of `lines` (v3 JSON objects) in one streamed request; returns their
/// offsets in request order.
async fn produce_stream(api: &Api, lines: &[Value]) -> Vec<i64> {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let response = api
        .http
        .post(format!("{}/records", api.topic_url(TOPIC)))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("produce");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    text.lines()
        .map(|line| {
            let result: Value = serde_json::from_str(line).expect("result line");
            result["offset"]
                .as_i64()
                .unwrap_or_else(|| panic!("record refused: {result}"))
        })
        .collect()
}

fn record(key: &str, value: Option<&str>) -> Value {
    match value {
        Some(value) => json!({
            "key": {"type": "STRING", "data": key},
            "value": {"type": "STRING", "data": value},
        }),
        None => json!({"key": {"type": "STRING", "data": key}}),
    }
}

/// (offset, key, value) of every record a consumer reads from the start.
async fn contents(api: &Api) -> Vec<(i64, String, Option<String>)> {
    api.read_all(TOPIC, 0)
        .await
        .iter()
        .map(|r| {
            (
                r["offset"].as_i64().expect("offset"),
                r["key"]["data"].as_str().expect("key").to_string(),
                r["value"]["data"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_compacted_topic_when_the_cleaner_runs_then_the_latest_value_per_key_survives_sigkill()
 {
    let mut cluster = cluster(1, &["--log-cleaner-backoff-ms=200"]).await;
    let api = Api::new(&cluster, 0);
    let retention = DELETE_RETENTION_MS.to_string();
    api.create_topic(
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("segment.ms", "300"),
            ("flush.ms", "100"),
            ("delete.retention.ms", &retention),
        ],
    )
    .await;

    // Many updates per key, then tombstones for some keys.
    let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let lines: Vec<(String, Option<String>)> = (0..KEYS)
            .map(|k| (format!("k{k}"), Some(format!("k{k}-v{round}"))))
            .collect();
        let values: Vec<Value> = lines.iter().map(|(k, v)| record(k, v.as_deref())).collect();
        for ((key, value), offset) in lines.into_iter().zip(produce_stream(&api, &values).await) {
            latest.insert(key, (offset, value));
        }
    }
    let tombstones: Vec<Value> = DELETED.iter().map(|k| record(k, None)).collect();
    let deleted_at = Instant::now();
    for (key, offset) in DELETED.iter().zip(produce_stream(&api, &tombstones).await) {
        latest.insert(key.to_string(), (offset, None));
    }
    // A record written after segment.ms rolls everything above into cleanable segments.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, marker) = api.produce(TOPIC, record("marker", Some("last"))).await;
    latest.insert("marker".into(), (marker, Some("last".into())));
    let total = (KEYS * ROUNDS + DELETED.len() + 1) as i64;
    assert_eq!(marker, total - 1);

    let mut with_tombstones: Vec<(i64, String, Option<String>)> = latest
        .iter()
        .map(|(k, (o, v))| (*o, k.clone(), v.clone()))
        .collect();
    with_tombstones.sort();
    let without_tombstones: Vec<_> = with_tombstones
        .iter()
        .filter(|(_, _, v)| v.is_some())
        .cloned()
        .collect();

    // First the superseded values go; the tombstones stay while they are young.
    let mut seen = Vec::new();
    let compacted = eventually(Duration::from_secs(30), async || {
        seen = contents(&api).await;
        seen == with_tombstones || seen == without_tombstones
    })
    .await;
    assert!(compacted, "not compacted in time; last read: {seen:?}");
    if deleted_at.elapsed() < Duration::from_millis(DELETE_RETENTION_MS) {
        assert_eq!(seen, with_tombstones, "tombstones removed too early");
    }
    // Reading from a compacted-away offset returns the next record that exists.
    let (_, page) = api.read(TOPIC, 0, "0", "&max_records=1").await;
    assert_eq!(page["records"][0]["offset"], with_tombstones[0].0);
    assert_eq!(page["high_watermark"], total);

    // After delete.retention.ms the tombstones go too.
    let gone = eventually(
        Duration::from_millis(DELETE_RETENTION_MS) + Duration::from_secs(30),
        async || {
            seen = contents(&api).await;
            seen == without_tombstones
        },
    )
    .await;
    assert!(gone, "tombstones not removed in time; last read: {seen:?}");
    assert!(deleted_at.elapsed() >= Duration::from_millis(DELETE_RETENTION_MS));

    // A SIGKILL and restart keep exactly that.
    cluster.broker(1).kill().expect("sigkill");
    cluster.restart_broker(1).await.expect("restart");
    let mut after = Vec::new();
    let same = eventually(Duration::from_secs(30), async || {
        after = contents(&api).await;
        after == without_tombstones
    })
    .await;
    assert!(same, "content changed across the restart: {after:?}");
    let (_, next) = api.produce(TOPIC, record("after-restart", Some("x"))).await;
    assert_eq!(next, total, "the log end did not move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_bad_compaction_input_when_sent_then_it_is_refused_with_422() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    for (name, value) in [
        ("cleanup.policy", "bogus"),
        ("min.cleanable.dirty.ratio", "2"),
        ("delete.retention.ms", "-5"),
    ] {
        let body = json!({
            "topic_name": "refused",
            "partitions_count": 1,
            "configs": [{"name": name, "value": value}],
        });
        let answer = api.post_json(&api.topics_url(), &body).await;
        assert_error(&answer, 422, 42206);
    }

    api.create_topic(TOPIC, 1, &[("cleanup.policy", "compact,delete")])
        .await;
    let url = format!("{}/records", api.topic_url(TOPIC));
    let keyless = api
        .post_json(&url, &json!({"value": {"type": "STRING", "data": "v"}}))
        .await;
    assert_error(&keyless, 422, 42207);
    // The batch form refuses it under the same code.
    let batch = api
        .post_raw(
            &format!("{}/topics/{TOPIC}", api.base),
            "application/x-ndjson",
            "{\"value\":\"x\"}\n",
        )
        .await;
    assert_error(&batch, 422, 42207);
    let (_, offset) = api.produce(TOPIC, record("k", Some("v"))).await;
    assert_eq!(offset, 0, "the refused record took no offset");
}
