//! Crash and fault tests against real broker processes.
//!
//! Durability contract pinned here: a record acknowledged while its topic has
//! `flush.messages=1` was fsynced before the answer, so it survives SIGKILL at any moment; on
//! restart the log is validated, a torn or corrupt tail is cut, and every earlier record is
//! readable at the offset it was acknowledged with.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use runnel_broker::log::{LogConfig, PartitionLog};
use serde_json::json;
use support::{Api, cluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_fsynced_acks_when_the_broker_is_sigkilled_mid_produce_then_every_ack_survives() {
    let mut cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("crash", 2, &[("flush.messages", "1")])
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for producer in 0..4 {
        let api = api.clone();
        let stop = stop.clone();
        producers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for seq in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = format!("{{\"value\":{{\"p\":{producer},\"s\":{seq}}}}}\n{{\"value\":{{\"p\":{producer},\"s\":{seq},\"second\":true}}}}\n");
                let response = api
                    .http
                    .post(format!("{}/topics/crash", api.base))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                let Ok(response) = response else { break };
                if response.status() != 200 {
                    break;
                }
                let Ok(answer) = response.json::<serde_json::Value>().await else { break };
                let partition = &answer["partitions"][0];
                acked.push((
                    partition["partition"].as_u64().expect("partition") as u32,
                    partition["base_offset"].as_i64().expect("offset"),
                    producer,
                    seq,
                ));
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.broker(1).kill().expect("sigkill");
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for producer in producers {
        acked.extend(producer.await.expect("producer"));
    }
    assert!(
        acked.len() > 20,
        "too few acknowledged writes before the kill: {}",
        acked.len()
    );

    // The files on disk pass validation after recovery.
    let data_dir = cluster.broker(1).data_dir().to_path_buf();
    for partition in 0..2 {
        let (log, _) = PartitionLog::open(
            &data_dir.join(format!("crash-{partition}")),
            LogConfig::default(),
        )
        .expect("recover");
        log.verify().expect("log validates");
    }

    cluster.restart_broker(1).await.expect("restart");
    let mut stored: HashMap<u32, Vec<serde_json::Value>> = HashMap::new();
    for partition in 0..2 {
        stored.insert(partition, api.read_all("crash", partition).await);
    }
    for (partition, offset, producer, seq) in &acked {
        let records = &stored[partition];
        let first = &records[*offset as usize]["value"]["data"];
        let second = &records[*offset as usize + 1]["value"]["data"];
        assert_eq!(
            first,
            &json!({"p": producer, "s": seq}),
            "lost ack at {partition}/{offset}"
        );
        assert_eq!(second, &json!({"p": producer, "s": seq, "second": true}));
    }
    // Offsets stay dense and every stored record appears once.
    for records in stored.values() {
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record["offset"], i);
        }
    }
    let (_, next) = api
        .produce(
            "crash",
            json!({"partition_id": 0, "value": {"type": "STRING", "data": "after"}}),
        )
        .await;
    assert_eq!(next as usize, stored[&0].len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_corrupt_tail_when_the_broker_restarts_then_it_is_truncated_and_the_rest_kept() {
    let mut cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("torn", 1, &[]).await;
    for i in 0..10 {
        api.produce(
            "torn",
            json!({"value": {"type": "STRING", "data": format!("record-{i}")}}),
        )
        .await;
    }
    let status = cluster
        .broker(1)
        .terminate_and_wait()
        .await
        .expect("sigterm");
    assert!(status.success(), "SIGTERM must exit cleanly: {status:?}");

    let segment = cluster
        .broker(1)
        .data_dir()
        .join("torn-0")
        .join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).expect("segment");
    // Flip a byte inside the last batch's records, then append a torn half-batch.
    let last = bytes.len() - 5;
    bytes[last] ^= 0x55;
    bytes.extend_from_within(..40);
    std::fs::write(&segment, &bytes).expect("corrupt");
    // A garbage index must be rebuilt, not trusted.
    let index = segment.with_extension("index");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&index)
        .expect("index")
        .write_all(b"junk")
        .expect("write");

    cluster.restart_broker(1).await.expect("restart");
    let records = api.read_all("torn", 0).await;
    assert_eq!(records.len(), 9, "only the corrupt last record is dropped");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["value"]["data"], format!("record-{i}"));
    }
    let (_, offset) = api
        .produce(
            "torn",
            json!({"value": {"type": "STRING", "data": "after"}}),
        )
        .await;
    assert_eq!(offset, 9);
    let (log, _) = PartitionLog::open(
        &cluster.broker(1).data_dir().join("torn-0"),
        LogConfig::default(),
    )
    .expect("open");
    assert_eq!(log.verify(), Ok(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_retention_limits_then_old_segments_go_and_nothing_else() {
    let mut cluster = cluster(1, &["--log-retention-check-interval-ms", "200"]).await;
    let api = Api::new(&cluster, 0);
    let hour_ago = runnel_common::time::now_ms() - 3_600_000;
    api.create_topic(
        "by-time",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "600000")],
    )
    .await;
    for i in 0..40 {
        api.produce("by-time", json!({"value": {"type": "STRING", "data": format!("old-{i:02}-{}", "x".repeat(40))}, "timestamp": hour_ago})).await;
    }
    for i in 0..40 {
        api.produce(
            "by-time",
            json!({"value": {"type": "STRING", "data": format!("new-{i:02}-{}", "x".repeat(40))}}),
        )
        .await;
    }
    let deleted = eventually(Duration::from_secs(10), async || {
        api.partition("by-time", 0).await["earliest_offset"]
            .as_i64()
            .unwrap_or(0)
            > 0
    })
    .await;
    assert!(deleted, "retention.ms never deleted a segment");
    let earliest = api.partition("by-time", 0).await["earliest_offset"]
        .as_i64()
        .expect("earliest");
    assert!(
        earliest <= 40,
        "a segment with new records was deleted (earliest {earliest})"
    );
    let records = api.read_all("by-time", 0).await;
    let new: Vec<_> = records
        .iter()
        .filter(|r| {
            r["value"]["data"]
                .as_str()
                .is_some_and(|s| s.starts_with("new"))
        })
        .collect();
    assert_eq!(new.len(), 40, "every recent record stays");
    assert_eq!(
        records.first().map(|r| r["offset"].as_i64()),
        Some(Some(earliest))
    );

    api.create_topic(
        "by-size",
        1,
        &[("segment.bytes", "1024"), ("retention.bytes", "3000")],
    )
    .await;
    for i in 0..100 {
        api.produce(
            "by-size",
            json!({"value": {"type": "STRING", "data": format!("v-{i:03}-{}", "y".repeat(40))}}),
        )
        .await;
    }
    let shrunk = eventually(Duration::from_secs(10), async || {
        api.partition("by-size", 0).await["earliest_offset"]
            .as_i64()
            .unwrap_or(0)
            > 0
    })
    .await;
    assert!(shrunk, "retention.bytes never deleted a segment");
    // Files are deleted just after the segments leave the log: wait for the disk to follow.
    let dir = cluster.broker(1).data_dir().join("by-size-0");
    let on_disk = || -> u64 {
        std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    let within = eventually(Duration::from_secs(5), async || on_disk() <= 3000 + 1024).await;
    assert!(within, "retention.bytes left {} bytes", on_disk());
    let records = api.read_all("by-size", 0).await;
    let last = records.last().expect("records remain");
    assert_eq!(last["offset"], 99, "the newest records are kept");
    for pair in records.windows(2) {
        assert_eq!(
            pair[1]["offset"].as_i64(),
            pair[0]["offset"].as_i64().map(|o| o + 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_etcd_restarts_then_the_broker_keeps_serving_and_recovers_metadata() {
    let cluster = cluster(1, &["--lease-ttl-secs", "3"]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("steady", 1, &[]).await;
    cluster.etcd().kill(libc::SIGKILL).expect("kill etcd");
    // Produce and read need no metadata writes: they keep working without etcd.
    for i in 0..5 {
        api.produce(
            "steady",
            json!({"value": {"type": "STRING", "data": format!("during-{i}")}}),
        )
        .await;
    }
    assert_eq!(api.read_all("steady", 0).await.len(), 5);
    // Metadata writes fail with a retryable error while etcd is away.
    let (status, body) = api
        .post_json(&api.topics_url(), &json!({"topic_name": "later"}))
        .await;
    assert_eq!(status, 503, "{body}");
    cluster.etcd().restart().await.expect("restart etcd");
    let created = eventually(Duration::from_secs(20), async || {
        api.post_json(&api.topics_url(), &json!({"topic_name": "later"}))
            .await
            .0
            == 201
    })
    .await;
    assert!(created, "topic creation never recovered after etcd restart");
    api.produce("later", json!({"value": {"type": "STRING", "data": "ok"}}))
        .await;
    let registered = eventually(Duration::from_secs(15), async || {
        api.get(&format!("{}/v3/clusters", api.base)).await.1["data"][0]["brokers"][0]["broker_id"]
            == 1
    })
    .await;
    assert!(registered, "broker registration did not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_broker_paused_past_its_lease_when_resumed_then_it_registers_again_and_serves() {
    let mut cluster = cluster(1, &["--lease-ttl-secs", "2"]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("paused", 1, &[]).await;
    api.produce(
        "paused",
        json!({"value": {"type": "STRING", "data": "before"}}),
    )
    .await;
    cluster.broker(1).signal(libc::SIGSTOP).expect("stop");
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.broker(1).signal(libc::SIGCONT).expect("cont");
    // Until it has a live lease again the broker refuses writes (its lease may have expired
    // while it was paused); then it serves again.
    let records_url = format!("{}/records", api.topic_url("paused"));
    let served = eventually(Duration::from_secs(20), async || {
        api.post_json(
            &records_url,
            &json!({"value": {"type": "STRING", "data": "after"}}),
        )
        .await
        .0 == 200
    })
    .await;
    assert!(
        served,
        "the broker did not serve writes again after its lease expired"
    );
    let registered = eventually(Duration::from_secs(5), async || {
        api.get(&format!("{}/v3/clusters", api.base)).await.1["data"][0]["brokers"][0]["broker_id"]
            == 1
    })
    .await;
    assert!(registered, "the broker is not registered");
    let records = api.read_all("paused", 0).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["value"]["data"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_data_dir_of_another_cluster_then_the_broker_refuses_to_start_and_deletes_nothing()
{
    let mut cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("kept", 1, &[]).await;
    api.produce(
        "kept",
        json!({"value": {"type": "STRING", "data": "precious"}}),
    )
    .await;
    cluster.broker(1).terminate_and_wait().await.expect("stop");
    let data_dir = cluster.broker(1).data_dir().to_path_buf();
    let meta = data_dir.join("meta.json");
    std::fs::write(&meta, r#"{"cluster_id":"someone-else","broker_id":1}"#)
        .expect("rewrite meta.json");
    cluster.broker(1).start().expect("spawn");
    let refused = cluster.broker(1).wait_ready("/readyz").await.is_err();
    assert!(
        refused,
        "a broker must not serve a data dir of another cluster"
    );
    assert!(!cluster.broker(1).is_running(), "it exits");
    assert!(
        cluster
            .broker(1)
            .log_tail(20)
            .contains("refusing to touch it")
    );
    assert!(
        data_dir
            .join("kept-0")
            .join("00000000000000000000.log")
            .exists(),
        "nothing was deleted"
    );
}
