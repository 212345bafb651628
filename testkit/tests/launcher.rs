//! Pins the launcher's contract (`scripts/cluster` runs `runnel-cluster`): `up` starts detached
//! processes and writes `cluster.env`, refuses while the cluster runs, `kill`/`start` rewrite
//! a pid, `down` stops everything keeping data, and `up` again brings back the same endpoints
//! with the same data. The etcd-only test (`--brokers 0 --coordinators 0`) needs no service
//! binary; the coordinator test runs the real broker and coordinator of this target dir.

mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use runnel_testkit::pid::{PidState, state};

// Base64 of "launcher" and "kept", for etcd's JSON gateway.
const KEY: &str = "bGF1bmNoZXI=";
const VALUE: &str = "a2VwdA==";

/// Runs `down` when dropped, so a failing test leaves no detached etcd behind.
struct Launcher {
    dir: PathBuf,
    _root: tempfile::TempDir,
}

impl Launcher {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        Launcher {
            dir: root.path().join("cluster"),
            _root: root,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_runnel-cluster"))
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .env_remove("RUNNEL_DIR")
            .env_remove("RUNNEL_BROKER_BIN")
            .env_remove("RUNNEL_COORDINATOR_BIN")
            .output()
            .expect("run runnel-cluster");
        eprintln!(
            "$ runnel-cluster {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "runnel-cluster {args:?} failed: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn env(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(self.dir.join("cluster.env")).expect("read cluster.env");
        text.lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
            .collect()
    }

    fn etcd_pid(&self) -> Option<u32> {
        self.pid("RUNNEL_ETCD_PID")
    }

    fn pid(&self, key: &str) -> Option<u32> {
        self.env()
            .get(key)
            .map(|pid| pid.parse().expect("numeric pid"))
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

fn alive(pid: u32, marker: impl AsRef<OsStr>) -> bool {
    state(pid, Some(marker.as_ref())) != PidState::Gone
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

#[tokio::test]
async fn given_a_cluster_dir_when_up_kill_start_down_up_should_keep_endpoint_and_data() {
    let launcher = Launcher::new();
    launcher.ok(&["up", "--brokers", "0", "--coordinators", "0"]);
    let env = launcher.env();
    let dir = launcher.dir.canonicalize().expect("cluster dir");
    let etcd_data = dir.join("etcd");
    assert_eq!(env["RUNNEL_DIR"], dir.display().to_string());
    assert_eq!(env["RUNNEL_BROKERS"], "");
    assert_eq!(env["RUNNEL_COORDINATORS"], "");
    let endpoint = env["RUNNEL_ETCD_ENDPOINTS"].clone();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let first_pid = launcher.etcd_pid().expect("etcd pid in cluster.env");
    assert!(alive(first_pid, &etcd_data));
    let put = http()
        .post(format!("{endpoint}/v3/kv/put"))
        .json(&serde_json::json!({ "key": KEY, "value": VALUE }))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);

    let again = launcher.run(&["up"]);
    assert!(!again.status.success(), "a second up must refuse");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    launcher.ok(&["kill", "etcd", "--signal", "KILL"]);
    assert!(!alive(first_pid, &etcd_data));
    assert_eq!(
        launcher.etcd_pid(),
        None,
        "kill drops the pid from cluster.env"
    );
    assert_ne!(launcher.run(&["status"]).status.code(), Some(0));
    launcher.ok(&["start", "etcd"]);
    let second_pid = launcher.etcd_pid().expect("start writes the new pid");
    assert_ne!(second_pid, first_pid);
    launcher.ok(&["status"]);

    launcher.ok(&["down"]);
    assert!(!alive(second_pid, &etcd_data));
    assert_eq!(
        launcher.etcd_pid(),
        None,
        "down drops the pid from cluster.env"
    );
    assert!(
        launcher.ok(&["down"]).contains("not running"),
        "down is idempotent"
    );

    launcher.ok(&["up"]);
    assert_eq!(
        launcher.env()["RUNNEL_ETCD_ENDPOINTS"],
        endpoint,
        "up again reuses the ports"
    );
    let range: serde_json::Value = http()
        .post(format!("{endpoint}/v3/kv/range"))
        .json(&serde_json::json!({ "key": KEY }))
        .send()
        .await
        .expect("range")
        .json()
        .await
        .expect("range json");
    assert_eq!(
        range["kvs"][0]["value"], VALUE,
        "data survives down and up: {range}"
    );
}

#[test]
fn given_no_cluster_when_down_should_fail_politely() {
    let launcher = Launcher::new();
    let output = launcher.run(&["down"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no cluster in"));
}

#[tokio::test]
async fn given_two_coordinators_when_up_kill_start_down_up_should_track_them_in_cluster_env() {
    let Some(coordinator_bin) = support::coordinator_bin() else {
        return;
    };
    let broker_bin = support::broker_bin();
    let launcher = Launcher::new();
    let up = launcher.ok(&[
        "up",
        "--brokers",
        "1",
        "--coordinators",
        "2",
        "--broker-bin",
        path_arg(&broker_bin),
        "--coordinator-bin",
        path_arg(&coordinator_bin),
    ]);
    assert!(up.contains("coordinator 2"), "{up}");
    let env = launcher.env();
    let urls: Vec<String> = (1..=2)
        .map(|id| env[&format!("RUNNEL_COORDINATOR_{id}_URL")].clone())
        .collect();
    assert_eq!(env["RUNNEL_COORDINATORS"], urls.join(","));
    assert_ne!(urls[0], urls[1]);
    for url in &urls {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        for path in ["/readyz", "/healthz"] {
            let answer = http().get(format!("{url}{path}")).send().await;
            let status = answer.map(|response| response.status().as_u16());
            assert_eq!(status.ok(), Some(200), "GET {url}{path}");
        }
    }
    let first_pid = launcher
        .pid("RUNNEL_COORDINATOR_1_PID")
        .expect("coordinator 1 pid in cluster.env");
    let second_pid = launcher
        .pid("RUNNEL_COORDINATOR_2_PID")
        .expect("coordinator 2 pid in cluster.env");
    let broker_pid = launcher.pid("RUNNEL_BROKER_1_PID").expect("broker pid");
    assert!(alive(first_pid, &urls[0]) && alive(second_pid, &urls[1]));
    let status = launcher.ok(&["status"]);
    assert!(
        status.contains("coordinator 1") && status.contains("coordinator 2"),
        "{status}"
    );

    launcher.ok(&["kill", "coordinator-1"]);
    assert!(!alive(first_pid, &urls[0]));
    assert_eq!(launcher.pid("RUNNEL_COORDINATOR_1_PID"), None);
    assert_eq!(launcher.pid("RUNNEL_COORDINATOR_2_PID"), Some(second_pid));
    assert_eq!(launcher.run(&["status"]).status.code(), Some(3));
    let unknown = launcher.run(&["kill", "coordinator-9"]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no coordinator 9"),
        "{unknown:?}"
    );
    launcher.ok(&[
        "start",
        "coordinator-1",
        "--coordinator-bin",
        path_arg(&coordinator_bin),
    ]);
    let restarted_pid = launcher
        .pid("RUNNEL_COORDINATOR_1_PID")
        .expect("start writes the new pid");
    assert_ne!(restarted_pid, first_pid);
    assert_eq!(launcher.env()["RUNNEL_COORDINATOR_1_URL"], urls[0]);
    launcher.ok(&["status"]);

    let down = launcher.ok(&["down"]);
    let position = |what: &str| {
        down.find(what)
            .unwrap_or_else(|| panic!("`{what}` in down's output: {down}"))
    };
    assert!(position("stopped coordinator 1") < position("stopped broker 1"));
    assert!(position("stopped coordinator 2") < position("stopped broker 1"));
    assert!(position("stopped broker 1") < position("stopped etcd"));
    assert!(!alive(restarted_pid, &urls[0]) && !alive(second_pid, &urls[1]));
    let dir = launcher.dir.canonicalize().expect("cluster dir");
    assert!(!alive(broker_pid, dir.join("broker-1")));
    let env = launcher.env();
    assert!(
        !env.keys().any(|key| key.ends_with("_PID")),
        "down drops every pid: {env:?}"
    );

    // The DIR remembers how many coordinators there are and their ports.
    launcher.ok(&[
        "up",
        "--broker-bin",
        path_arg(&broker_bin),
        "--coordinator-bin",
        path_arg(&coordinator_bin),
    ]);
    let env = launcher.env();
    assert_eq!(env["RUNNEL_COORDINATORS"], urls.join(","), "same ports");
    assert!(env.contains_key("RUNNEL_COORDINATOR_2_PID"));
    assert!(dir.join("logs/coordinator-2.log").is_file());
}

#[test]
fn given_a_missing_coordinator_binary_when_up_should_say_so_and_start_nothing() {
    let launcher = Launcher::new();
    let missing = launcher.dir.with_file_name("no-such-runnel-coordinator");
    let output = launcher.run(&[
        "up",
        "--brokers",
        "0",
        "--coordinator-bin",
        path_arg(&missing),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("coordinator executable runnel-coordinator is missing")
            && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );
    assert!(
        !launcher.dir.join("cluster.env").exists(),
        "nothing was started"
    );
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
