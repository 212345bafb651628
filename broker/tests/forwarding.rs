//! Several brokers: partitions are spread over them, and any broker serves any request by
//! forwarding to the partition's leader in one hop.

mod support;

use std::collections::HashSet;

use serde_json::{Value, json};
use support::{Api, assert_error, cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_brokers_when_clients_use_either_then_requests_reach_the_leaders() {
    let mut cluster = cluster(2, &[]).await;
    let first = Api::new(&cluster, 0);
    let second = Api::new(&cluster, 1);
    first.create_topic("spread", 4, &[]).await;

    let partitions = first
        .get(&format!("{}/partitions", first.topic_url("spread")))
        .await
        .1;
    let leaders: HashSet<u64> = partitions["data"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["leader_id"].as_u64().expect("leader"))
        .collect();
    assert_eq!(
        leaders,
        HashSet::from([1, 2]),
        "leaders are spread over both brokers"
    );

    // One v2 batch spanning every partition, sent to broker 1: split by leader, answered in order.
    let records: Vec<Value> = (0..8)
        .map(|i| json!({"partition": i % 4, "value": {"i": i}}))
        .collect();
    let (status, answer) = first
        .post_raw(
            &format!("{}/topics/spread", first.base),
            "application/vnd.kafka.json.v2+json",
            json!({"records": records}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    for (i, offset) in answer["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .enumerate()
    {
        assert_eq!(offset["partition"], i % 4);
        assert_eq!(offset["offset"], i / 4);
    }
    // v3 and NDJSON through broker 2.
    for partition in 0..4 {
        let (p, offset) = second
            .produce(
                "spread",
                json!({"partition_id": partition, "value": {"type": "STRING", "data": "v3"}}),
            )
            .await;
        assert_eq!((p, offset), (partition, 2));
    }
    let (status, batch) = second
        .post_raw(
            &format!("{}/topics/spread", second.base),
            "application/x-ndjson",
            "{\"partition\":0,\"value\":1}\n{\"partition\":3,\"value\":2}\n",
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["partitions"].as_array().expect("partitions").len(), 2);

    // Reads and offsets give the same answer from either broker.
    for partition in 0..4 {
        let via_first = first.read_all("spread", partition).await;
        let via_second = second.read_all("spread", partition).await;
        assert_eq!(via_first, via_second);
        assert_eq!(
            via_first.len(),
            if partition == 0 || partition == 3 {
                4
            } else {
                3
            }
        );
        assert_eq!(via_first[0]["value"]["data"], json!({"i": partition}));
        assert_eq!(
            first.partition("spread", partition).await["latest_offset"],
            via_first.len()
        );
        assert_eq!(
            second.partition("spread", partition).await["latest_offset"],
            via_first.len()
        );
    }

    // The internal endpoint refuses a partition this broker does not lead, naming the leader.
    let led_by_two = partitions["data"]
        .as_array()
        .expect("partitions")
        .iter()
        .find(|p| p["leader_id"] == 2)
        .and_then(|p| p["partition_id"].as_u64())
        .expect("a partition led by broker 2");
    let refused = first
        .post_raw(
            &format!(
                "{}/internal/v1/topics/spread/partitions/{led_by_two}/append",
                first.base
            ),
            "application/vnd.kafka.record-batch",
            vec![0u8; 70],
        )
        .await;
    assert_error(&refused, 421, 42101);
    assert!(
        refused.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("broker 2"))
    );
    // A garbage batch sent to the leader is rejected without touching the log.
    let garbage = second
        .post_raw(
            &format!(
                "{}/internal/v1/topics/spread/partitions/{led_by_two}/append",
                second.base
            ),
            "application/vnd.kafka.record-batch",
            vec![7u8; 100],
        )
        .await;
    assert_error(&garbage, 422, 42205);

    // With the leader of a partition down, requests for it get a retryable error, others work.
    cluster.broker(2).kill().expect("kill broker 2");
    let (status, body) = first.read("spread", led_by_two as u32, "0", "").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error_code"]
            .as_u64()
            .is_some_and(|c| c == 50301 || c == 50302)
    );
    let led_by_one = partitions["data"]
        .as_array()
        .expect("partitions")
        .iter()
        .find(|p| p["leader_id"] == 1)
        .and_then(|p| p["partition_id"].as_u64())
        .expect("a partition led by broker 1");
    let (status, page) = first.read("spread", led_by_one as u32, "0", "").await;
    assert_eq!(status, 200, "{page}");
}
