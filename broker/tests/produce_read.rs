//! Producing in every form and reading back against a real broker: round trips of every key
//! and value type, Kafka-compatible key placement, ordering, long-poll, offsets by time, and
//! the bad inputs of each endpoint.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use runnel_common::partitioner::partition_for_key;
use serde_json::{Value, json};
use support::{Api, assert_error, cluster};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_every_form_and_type_when_produced_then_reads_return_the_same_records() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("t", 1, &[]).await;
    let records_url = format!("{}/records", api.topic_url("t"));

    // v3, one record of each type, with headers and an explicit timestamp.
    let (status, first) = api
        .post_json(
            &records_url,
            &json!({"key": {"type": "STRING", "data": "k1"}, "value": {"type": "JSON", "data": {"n": [1, 2, {"x": null}]}},
                    "headers": [{"name": "trace", "value": b64(b"abc")}, {"name": "empty", "value": null}],
                    "timestamp": 1_700_000_000_123i64}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["offset"], 0);
    assert_eq!(first["timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(first["key"], json!({"type": "STRING", "size": 2}));
    let binary = [0u8, 159, 146, 150, 255];
    api.produce("t", json!({"key": {"type": "BINARY", "data": b64(&binary)}, "value": {"type": "BINARY", "data": b64(&binary)}}))
        .await;
    api.produce(
        "t",
        json!({"value": {"type": "STRING", "data": "plain \"quoted\" ünïcode"}}),
    )
    .await;
    api.produce("t", json!({"key": {"type": "JSON", "data": 42}}))
        .await; // null value (tombstone)

    // v2 JSON and binary embedded formats.
    let (status, v2) = api
        .post_raw(
            &format!("{}/topics/t", api.base),
            "application/vnd.kafka.json.v2+json",
            json!({"records": [{"key": "v2key", "value": {"deep": true}}, {"value": [1, 2, 3]}]})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(
        v2["offsets"][0],
        json!({"partition": 0, "offset": 4, "error_code": null, "error": null})
    );
    assert_eq!(v2["offsets"][1]["offset"], 5);
    let (status, _) = api
        .post_raw(
            &format!("{}/topics/t", api.base),
            "application/vnd.kafka.binary.v2+json",
            json!({"records": [{"value": b64(b"bin-v2")}]}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    // NDJSON batch.
    let (status, batch) = api
        .post_raw(
            &format!("{}/topics/t", api.base),
            "application/x-ndjson",
            "{\"value\":\"n1\"}\n{\"value\":\"n2\",\"key\":\"nk\"}\n",
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(
        batch["partitions"][0],
        json!({"partition": 0, "base_offset": 7, "last_offset": 8, "record_count": 2, "error_code": null, "message": null})
    );

    let records = api.read_all("t", 0).await;
    assert_eq!(records.len(), 9);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["offset"], i);
    }
    assert_eq!(records[0]["key"], json!({"type": "STRING", "data": "k1"}));
    assert_eq!(
        records[0]["value"],
        json!({"type": "JSON", "data": {"n": [1, 2, {"x": null}]}})
    );
    assert_eq!(records[0]["timestamp"], 1_700_000_000_123i64);
    assert_eq!(records[0]["timestamp_type"], "CreateTime");
    assert_eq!(
        records[0]["headers"],
        json!([{"name": "trace", "value": b64(b"abc")}, {"name": "empty", "value": null}])
    );
    assert_eq!(
        records[1]["key"],
        json!({"type": "BINARY", "data": b64(&binary)})
    );
    assert_eq!(
        records[1]["value"],
        json!({"type": "BINARY", "data": b64(&binary)})
    );
    assert_eq!(
        records[2]["value"],
        json!({"type": "STRING", "data": "plain \"quoted\" ünïcode"})
    );
    assert_eq!(records[3]["key"], json!({"type": "JSON", "data": 42}));
    assert_eq!(records[3]["value"], Value::Null);
    assert_eq!(records[4]["key"], json!({"type": "JSON", "data": "v2key"}));
    assert_eq!(
        records[4]["value"],
        json!({"type": "JSON", "data": {"deep": true}})
    );
    assert_eq!(
        records[6]["value"],
        json!({"type": "STRING", "data": "bin-v2"})
    );
    assert_eq!(records[8]["key"], json!({"type": "JSON", "data": "nk"}));

    // The page's record count and next offset are also response headers.
    let response = api
        .http
        .get(format!(
            "{}/partitions/0/records?offset=2&max_records=3",
            api.topic_url("t")
        ))
        .send()
        .await
        .expect("read");
    assert_eq!(response.headers()["x-runnel-record-count"], "3");
    assert_eq!(response.headers()["x-runnel-next-offset"], "5");

    // Explicit formats.
    let (_, page) = api.read("t", 0, "4", "&max_records=1&format=binary").await;
    assert_eq!(
        page["records"][0]["value"]["data"],
        b64(br#"{"deep":true}"#)
    );
    assert_eq!(page["next_offset"], 5);
    let (_, page) = api.read("t", 0, "2", "&max_records=1&format=string").await;
    assert_eq!(page["records"][0]["value"]["type"], "STRING");

    // v3 stream: one answer per record, in order, errors in place.
    let stream = [
        json!({"value": {"type": "STRING", "data": "s1"}}),
        json!({"value": {"type": "BINARY", "data": "%%%"}}),
        json!({"partition_id": 9, "value": {"type": "STRING", "data": "s3"}}),
        json!({"value": {"type": "STRING", "data": "s4"}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let response = api
        .http
        .post(&records_url)
        .header("content-type", "application/json")
        .body(stream)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let answers: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0]["offset"], 9);
    assert_eq!(answers[1]["error_code"], 42205);
    assert_eq!(answers[2]["error_code"], 40402);
    assert_eq!(answers[3]["offset"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_keyed_records_then_they_land_where_kafkas_partitioner_puts_them() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("keyed", 7, &[]).await;
    for key in [
        "21",
        "foobar",
        "a-little-bit-long-string",
        "user-1",
        "user-2",
        "ünï",
    ] {
        let (partition, _) = api.produce("keyed", json!({"key": {"type": "STRING", "data": key}, "value": {"type": "STRING", "data": "v"}})).await;
        assert_eq!(partition, partition_for_key(key.as_bytes(), 7), "key {key}");
    }
    // murmur2("21") is a Kafka test vector: -973932308 → toPositive % 7.
    assert_eq!(
        partition_for_key(b"21", 7),
        ((-973_932_308i32 & 0x7fff_ffff) as u32) % 7
    );
    // Null keys go round-robin: one partition per request, spread over all of them.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..14 {
        let (partition, _) = api
            .produce(
                "keyed",
                json!({"value": {"type": "STRING", "data": "nokey"}}),
            )
            .await;
        seen.insert(partition);
    }
    assert_eq!(seen.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_concurrent_producers_then_each_partition_keeps_acknowledged_order() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("order", 2, &[]).await;
    let mut tasks = Vec::new();
    for producer in 0..4 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for seq in 0..50 {
                let partition = seq % 2;
                let (p, offset) = api
                    .produce("order", json!({"partition_id": partition, "value": {"type": "JSON", "data": {"producer": producer, "seq": seq}}}))
                    .await;
                acked.push((p, offset, producer, seq));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("producer"));
    }
    for partition in 0..2u32 {
        let records = api.read_all("order", partition).await;
        assert_eq!(records.len(), 100);
        // Each acknowledged write is at its acknowledged offset, exactly once.
        for (p, offset, producer, seq) in acked.iter().filter(|a| a.0 == partition) {
            let record = &records[*offset as usize];
            assert_eq!(
                record["value"]["data"],
                json!({"producer": producer, "seq": seq}),
                "partition {p} offset {offset}"
            );
        }
        // And each producer's records appear in the order it sent them.
        for producer in 0..4 {
            let seqs: Vec<i64> = records
                .iter()
                .filter(|r| r["value"]["data"]["producer"] == producer)
                .map(|r| r["value"]["data"]["seq"].as_i64().expect("seq"))
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "producer {producer} reordered: {seqs:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_long_poll_when_a_record_arrives_then_it_returns_early() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("poll", 1, &[]).await;
    let reader = {
        let api = api.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let page = api.read("poll", 0, "0", "&max_wait_ms=10000").await;
            (started.elapsed(), page)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.produce("poll", json!({"value": {"type": "STRING", "data": "wake"}}))
        .await;
    let (elapsed, (status, page)) = reader.await.expect("reader");
    assert_eq!(status, 200);
    assert_eq!(page["records"][0]["value"]["data"], "wake");
    assert!(
        elapsed < Duration::from_secs(5),
        "long poll took {elapsed:?}"
    );
    // Without data, the poll returns empty after its wait.
    let started = Instant::now();
    let (status, page) = api.read("poll", 0, "latest", "&max_wait_ms=300").await;
    assert_eq!(status, 200);
    assert!(page["records"].as_array().expect("records").is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_records_then_offsets_are_listed_by_position_and_time() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("times", 1, &[]).await;
    for (i, ts) in [1000i64, 2000, 3000, 4000].iter().enumerate() {
        let (_, offset) = api
            .produce(
                "times",
                json!({"value": {"type": "STRING", "data": "x"}, "timestamp": ts}),
            )
            .await;
        assert_eq!(offset, i as i64);
    }
    let url = format!("{}/partitions/0/offsets", api.topic_url("times"));
    let (_, offsets) = api.get(&format!("{url}?timestamp=2500")).await;
    assert_eq!(offsets["earliest_offset"], 0);
    assert_eq!(offsets["latest_offset"], 4);
    assert_eq!(
        offsets["offset_for_timestamp"],
        json!({"offset": 2, "timestamp": 3000})
    );
    let (_, none) = api.get(&format!("{url}?timestamp=5000")).await;
    assert_eq!(none["offset_for_timestamp"], Value::Null);
    let (_, v2) = api
        .get(&format!("{}/topics/times/partitions/0/offsets", api.base))
        .await;
    assert_eq!(v2, json!({"beginning_offset": 0, "end_offset": 4}));
    let (_, latest) = api.read("times", 0, "latest", "").await;
    assert_eq!(latest["next_offset"], 4);

    // LogAppendTime: the broker's clock, whatever the producer said.
    api.create_topic(
        "appended",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = runnel_common::time::now_ms();
    api.produce(
        "appended",
        json!({"value": {"type": "STRING", "data": "x"}, "timestamp": 5}),
    )
    .await;
    let records = api.read_all("appended", 0).await;
    assert_eq!(records[0]["timestamp_type"], "LogAppendTime");
    assert!(records[0]["timestamp"].as_i64().expect("ts") >= before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_bad_produce_and_read_requests_then_json_errors_and_stored_data_is_intact() {
    let cluster = cluster(1, &["--max-request-bytes", "65536"]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("strict", 2, &[("max.message.bytes", "1000")])
        .await;
    api.produce(
        "strict",
        json!({"partition_id": 0, "value": {"type": "STRING", "data": "keep-me"}}),
    )
    .await;
    let records_url = format!("{}/records", api.topic_url("strict"));
    let v2_url = format!("{}/topics/strict", api.base);

    assert_error(
        &api.post_json(
            &format!("{}/records", api.topic_url("nope")),
            &json!({"value": null}),
        )
        .await,
        404,
        40401,
    );
    assert_error(
        &api.post_raw(
            &format!("{}/topics/nope", api.base),
            "application/x-ndjson",
            "{\"value\":1}",
        )
        .await,
        404,
        40401,
    );
    assert_error(
        &api.post_raw(&records_url, "application/json", "{\"value\": ")
            .await,
        400,
        40001,
    );
    assert_error(
        &api.post_raw(&records_url, "application/json", "").await,
        400,
        40001,
    );
    assert_error(
        &api.post_raw(&records_url, "text/csv", "a,b").await,
        415,
        41501,
    );
    assert_error(&api.post_raw(&v2_url, "text/plain", "{}").await, 415, 41501);
    assert_error(
        &api.post_json(&records_url, &json!({"partition_id": 2, "value": null}))
            .await,
        404,
        40402,
    );
    assert_error(
        &api.post_json(&records_url, &json!({"partition_id": -1, "value": null}))
            .await,
        404,
        40402,
    );
    assert_error(
        &api.post_json(
            &records_url,
            &json!({"value": {"type": "BINARY", "data": "not*base64"}}),
        )
        .await,
        422,
        42205,
    );
    assert_error(
        &api.post_json(&records_url, &json!({"value": {"type": "AVRO", "data": 1}}))
            .await,
        422,
        42205,
    );
    assert_error(
        &api.post_json(
            &records_url,
            &json!({"value": {"type": "STRING", "data": 7}}),
        )
        .await,
        422,
        42205,
    );
    assert_error(
        &api.post_json(&records_url, &json!({"value": null, "timestamp": -5}))
            .await,
        422,
        42205,
    );
    assert_error(
        &api.post_json(&records_url, &json!({"value": null, "timestamp": "noon"}))
            .await,
        422,
        42205,
    );
    assert_error(
        &api.post_json(&records_url, &json!({"value": null, "bogus": 1}))
            .await,
        400,
        40001,
    );
    let big = "x".repeat(2000);
    assert_error(
        &api.post_json(
            &records_url,
            &json!({"value": {"type": "STRING", "data": big}}),
        )
        .await,
        422,
        42201,
    );
    assert_error(
        &api.post_raw(
            &v2_url,
            "application/x-ndjson",
            format!("{{\"value\":\"{big}\"}}"),
        )
        .await,
        422,
        42201,
    );
    assert_error(
        &api.post_raw(
            &v2_url,
            "application/x-ndjson",
            "{\"value\":1}\n{\"partition\":5}",
        )
        .await,
        422,
        42205,
    );
    let huge = "y".repeat(70_000);
    assert_error(
        &api.post_raw(&records_url, "application/json", huge).await,
        413,
        41301,
    );
    assert_error(
        &api.post_raw(
            &v2_url,
            "application/vnd.kafka.json.v2+json",
            "{\"records\": []}",
        )
        .await,
        422,
        42205,
    );
    assert_error(
        &api.post_raw(
            &v2_url,
            "application/vnd.kafka.binary.v2+json",
            "{\"records\":[{\"value\":\"??\"}]}",
        )
        .await,
        422,
        42205,
    );
    let bad_acks = api
        .post_raw(
            &format!("{v2_url}?acks=2"),
            "application/x-ndjson",
            "{\"value\":1}",
        )
        .await;
    assert_error(&bad_acks, 400, 40002);

    // Reads.
    assert_error(&api.read("strict", 0, "-1", "").await, 400, 40002);
    assert_error(&api.read("strict", 0, "abc", "").await, 400, 40002);
    assert_error(&api.read("strict", 0, "2", "").await, 422, 42202);
    assert_error(
        &api.read("strict", 0, "0", "&max_bytes=-1").await,
        400,
        40002,
    );
    assert_error(&api.read("strict", 0, "0", "&format=xml").await, 400, 40002);
    assert_error(
        &api.read("strict", 0, "0", "&max_wait_ms=soon").await,
        400,
        40002,
    );
    assert_error(&api.read("strict", 7, "0", "").await, 404, 40402);
    assert_error(&api.read("nope", 0, "0", "").await, 404, 40401);
    assert_error(
        &api.get(&format!(
            "{}/partitions/0/offsets?timestamp=-3",
            api.topic_url("strict")
        ))
        .await,
        400,
        40002,
    );

    // The one good record is still there, alone, and the topic still takes writes.
    let records = api.read_all("strict", 0).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["value"]["data"], "keep-me");
    assert!(api.read_all("strict", 1).await.is_empty());
    let (_, offset) = api
        .produce(
            "strict",
            json!({"partition_id": 0, "value": {"type": "STRING", "data": "next"}}),
        )
        .await;
    assert_eq!(offset, 1);
}
