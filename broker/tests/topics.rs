//! Topic administration over the v3 API against a real broker and etcd: lifecycle, configs,
//! and every bad input answered with the right JSON error.

mod support;

use serde_json::json;
use support::{Api, assert_error, cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_cluster_when_topics_are_created_described_and_deleted_then_metadata_follows() {
    let mut cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);

    let (status, clusters) = api.get(&format!("{}/v3/clusters", api.base)).await;
    assert_eq!(status, 200);
    assert_eq!(clusters["data"][0]["cluster_id"], api.cluster_id.as_str());
    assert_eq!(clusters["data"][0]["brokers"][0]["broker_id"], 1);

    api.create_topic("orders", 3, &[("retention.ms", "60000")])
        .await;
    let (status, topic) = api.get(&api.topic_url("orders")).await;
    assert_eq!(status, 200);
    assert_eq!(topic["topic_name"], "orders");
    assert_eq!(topic["partitions_count"], 3);
    assert_eq!(topic["replication_factor"], 1);

    let (_, list) = api.get(&api.topics_url()).await;
    assert_eq!(list["data"].as_array().expect("list").len(), 1);

    let (status, partitions) = api
        .get(&format!("{}/partitions", api.topic_url("orders")))
        .await;
    assert_eq!(status, 200);
    let partitions = partitions["data"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition_id"], i);
        assert_eq!(p["leader_id"], 1);
        assert_eq!(p["replicas"], json!([1]));
        assert_eq!(p["isr"], json!([1]));
        assert_eq!(p["earliest_offset"], 0);
        assert_eq!(p["latest_offset"], 0);
    }

    // Configs: the override, a default, a change, a reset.
    let (_, configs) = api
        .get(&format!("{}/configs", api.topic_url("orders")))
        .await;
    let configs = configs["data"].as_array().expect("configs").clone();
    let find = |name: &str| {
        configs
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .expect("config listed")
    };
    assert_eq!(find("retention.ms")["value"], "60000");
    assert_eq!(find("retention.ms")["is_default"], false);
    assert_eq!(find("cleanup.policy")["value"], "delete");
    assert_eq!(find("cleanup.policy")["source"], "DEFAULT_CONFIG");
    let config_url = format!("{}/configs/segment.bytes", api.topic_url("orders"));
    let response = api
        .http
        .put(&config_url)
        .json(&json!({"value": "4096"}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 204);
    let (_, segment) = api.get(&config_url).await;
    assert_eq!(segment["value"], "4096");
    let response = api.http.delete(&config_url).send().await.expect("delete");
    assert_eq!(response.status(), 204);
    let (_, segment) = api.get(&config_url).await;
    assert_eq!(segment["is_default"], true);
    let (status, _) = api
        .post_json(
            &format!("{}/configs:alter", api.topic_url("orders")),
            &json!({"data": [{"name": "retention.bytes", "value": "100000"}, {"name": "retention.ms", "operation": "DELETE"}]}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, retention) = api
        .get(&format!(
            "{}/configs/retention.bytes",
            api.topic_url("orders")
        ))
        .await;
    assert_eq!(retention["value"], "100000");

    // Delete removes the metadata and the files.
    let data_dir = cluster.broker(1).data_dir().to_path_buf();
    assert!(data_dir.join("orders-0").exists());
    let response = api
        .http
        .delete(api.topic_url("orders"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    assert_error(&api.get(&api.topic_url("orders")).await, 404, 40401);
    assert!(
        !data_dir.join("orders-0").exists(),
        "partition files must be removed"
    );

    // A re-created topic starts empty.
    api.create_topic("orders", 1, &[]).await;
    api.produce(
        "orders",
        json!({"value": {"type": "STRING", "data": "fresh"}}),
    )
    .await;
    assert_eq!(api.read_all("orders", 0).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_bad_admin_requests_then_each_gets_a_json_error_and_nothing_changes() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("kept", 2, &[]).await;
    api.produce(
        "kept",
        json!({"partition_id": 0, "value": {"type": "STRING", "data": "safe"}}),
    )
    .await;

    // Creating an existing topic, deleting a missing one.
    let create = |body: serde_json::Value| {
        let api = api.clone();
        async move { api.post_json(&api.topics_url(), &body).await }
    };
    assert_error(
        &create(json!({"topic_name": "kept", "partitions_count": 1})).await,
        409,
        40902,
    );
    let missing = api
        .http
        .delete(api.topic_url("missing"))
        .send()
        .await
        .expect("delete");
    assert_eq!(missing.status(), 404);
    // Names by Kafka's rules.
    for bad in ["", ".", "..", "has space", "a/b", &"x".repeat(250)] {
        assert_error(
            &create(json!({"topic_name": bad, "partitions_count": 1})).await,
            422,
            42205,
        );
    }
    assert_error(
        &create(json!({"topic_name": "p0", "partitions_count": 0})).await,
        422,
        42205,
    );
    assert_error(
        &create(json!({"topic_name": "p0", "partitions_count": -3})).await,
        422,
        42205,
    );
    assert_error(
        &create(json!({"topic_name": "rf", "replication_factor": 2})).await,
        422,
        42205,
    );
    assert_error(
        &create(json!({"topic_name": "c", "configs": [{"name": "no.such", "value": "1"}]})).await,
        422,
        42206,
    );
    assert_error(
        &create(json!({"topic_name": "c", "configs": [{"name": "retention.ms", "value": "soon"}]}))
            .await,
        422,
        42206,
    );
    assert_error(
        &create(json!({"topic_name": "x", "surprise": true})).await,
        400,
        40001,
    );
    assert_error(
        &api.post_raw(&api.topics_url(), "application/json", "{not json")
            .await,
        400,
        40001,
    );
    assert_error(
        &api.post_raw(&api.topics_url(), "text/plain", r#"{"topic_name":"t"}"#)
            .await,
        415,
        41501,
    );
    // Unknown cluster, route, method, partition, config.
    assert_error(
        &api.get(&format!("{}/v3/clusters/nope/topics", api.base))
            .await,
        404,
        40404,
    );
    assert_error(
        &api.get(&format!("{}/v3/nothing", api.base)).await,
        404,
        40400,
    );
    let patch = api
        .http
        .patch(api.topics_url())
        .send()
        .await
        .expect("patch");
    assert_eq!(patch.status(), 405);
    assert_error(
        &api.get(&format!("{}/partitions/2", api.topic_url("kept")))
            .await,
        404,
        40402,
    );
    assert_error(
        &api.get(&format!("{}/partitions/-1", api.topic_url("kept")))
            .await,
        404,
        40402,
    );
    assert_error(
        &api.get(&format!("{}/partitions/abc", api.topic_url("kept")))
            .await,
        400,
        40002,
    );
    assert_error(
        &api.get(&format!("{}/configs/no.such", api.topic_url("kept")))
            .await,
        422,
        42206,
    );
    let bad_value = api
        .http
        .put(format!(
            "{}/configs/message.timestamp.type",
            api.topic_url("kept")
        ))
        .json(&json!({"value": "Whenever"}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad_value.status(), 422);

    // Nothing stored was disturbed.
    let (_, topics) = api.get(&api.topics_url()).await;
    assert_eq!(topics["data"].as_array().expect("list").len(), 1);
    let records = api.read_all("kept", 0).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["value"]["data"], "safe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_running_broker_then_ops_endpoints_answer() {
    let cluster = cluster(1, &[]).await;
    let api = Api::new(&cluster, 0);
    api.create_topic("m", 1, &[]).await;
    api.produce("m", json!({"value": {"type": "JSON", "data": {"a": 1}}}))
        .await;
    let health = api
        .http
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("runnel_records_appended_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("runnel_log_size_bytes{topic=\"m\",partition=\"0\"}"));
    assert!(metrics.contains("runnel_http_request_duration_seconds_bucket"));
    let (status, doc) = api.get(&format!("{}/openapi.json", api.base)).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v3/clusters/{cluster_id}/topics/{topic}/records"]["post"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
