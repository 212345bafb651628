//! Pins the harness's etcd contract: it starts healthy on loopback, and after SIGKILL a restart
//! brings it back on the same endpoint with the data written before the kill.

use std::time::Duration;

use runnel_testkit::Etcd;

// Base64 of "runnel-testkit" and "kept", for etcd's JSON gateway.
const KEY: &str = "cnVubmVsLXRlc3RraXQ=";
const VALUE: &str = "a2VwdA==";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

async fn health(client: &reqwest::Client, endpoint: &str) -> serde_json::Value {
    let response = client
        .get(format!("{endpoint}/health"))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(response.status(), 200);
    response.json().await.expect("health json")
}

#[tokio::test]
async fn given_etcd_killed_with_sigkill_when_restarted_should_be_healthy_with_its_data() {
    let etcd = Etcd::start().await.expect("start etcd");
    let client = client();
    let endpoint = etcd.endpoint().to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(health(&client, &endpoint).await["health"], "true");
    let put = client
        .post(format!("{endpoint}/v3/kv/put"))
        .json(&serde_json::json!({ "key": KEY, "value": VALUE }))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);

    let first_pid = etcd.pid().expect("pid");
    etcd.kill(libc::SIGKILL).expect("SIGKILL etcd");
    assert!(!etcd.is_running());
    assert!(
        client
            .get(format!("{endpoint}/health"))
            .send()
            .await
            .is_err(),
        "killed etcd still answers"
    );

    etcd.restart().await.expect("restart etcd");
    assert_ne!(etcd.pid(), Some(first_pid));
    assert_eq!(etcd.endpoint(), endpoint);
    assert_eq!(health(&client, &endpoint).await["health"], "true");
    let range: serde_json::Value = client
        .post(format!("{endpoint}/v3/kv/range"))
        .json(&serde_json::json!({ "key": KEY }))
        .send()
        .await
        .expect("range")
        .json()
        .await
        .expect("range json");
    assert_eq!(range["kvs"][0]["value"], VALUE, "{range}");
}

#[tokio::test]
async fn given_etcd_stopped_with_sigstop_when_continued_should_answer_again() {
    let etcd = Etcd::start().await.expect("start etcd");
    let client = client();
    etcd.kill(libc::SIGSTOP).expect("SIGSTOP etcd");
    assert!(
        etcd.is_running(),
        "a stopped process still counts as running"
    );
    let stalled = client
        .get(format!("{}/health", etcd.endpoint()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(stalled.is_err(), "stopped etcd answered");
    etcd.kill(libc::SIGCONT).expect("SIGCONT etcd");
    etcd.wait_healthy().await.expect("healthy after SIGCONT");
    etcd.stop().await.expect("clean stop");
    assert!(!etcd.is_running());
}

#[tokio::test]
async fn given_no_etcd_binary_should_say_what_to_install() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut config = runnel_testkit::EtcdConfig::in_dir(root.path()).expect("config");
    config.binary = root.path().join("no-etcd-here");
    let error = Etcd::start_with(config)
        .await
        .expect_err("no etcd to start");
    assert!(
        error.to_string().contains("apt-get install -y etcd-server"),
        "{error}"
    );
}
