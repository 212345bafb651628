//! Renders `DIR/cluster.env`: `export NAME=value` lines a shell can source, listing only what
//! runs. It reads state and never changes it.

use super::state::{ClusterDir, ClusterState};

/// Returns the text of `cluster.env` for `state`. PID lines appear only for running processes.
pub fn render(dir: &ClusterDir, state: &ClusterState) -> String {
    let urls: Vec<String> = state.brokers.iter().map(|broker| broker.url()).collect();
    let mut vars: Vec<(String, String)> = vec![
        ("RUNNEL_DIR".into(), dir.root().display().to_string()),
        ("RUNNEL_ETCD_ENDPOINTS".into(), state.etcd.endpoint()),
        ("RUNNEL_ETCD_PREFIX".into(), state.etcd_prefix.clone()),
    ];
    if let Some(pid) = state.etcd.pid {
        vars.push(("RUNNEL_ETCD_PID".into(), pid.to_string()));
    }
    vars.push(("RUNNEL_BROKERS".into(), urls.join(",")));
    vars.push((
        "RUNNEL_CLUSTER_ID".into(),
        state.cluster_id.clone().unwrap_or_default(),
    ));
    for broker in &state.brokers {
        vars.push((format!("RUNNEL_BROKER_{}_URL", broker.id), broker.url()));
        if let Some(pid) = broker.pid {
            vars.push((format!("RUNNEL_BROKER_{}_PID", broker.id), pid.to_string()));
        }
    }
    let coordinators = state.coordinators();
    let urls: Vec<String> = coordinators.iter().map(|c| c.url()).collect();
    vars.push(("RUNNEL_COORDINATORS".into(), urls.join(",")));
    for coordinator in coordinators {
        let id = coordinator.id;
        vars.push((format!("RUNNEL_COORDINATOR_{id}_URL"), coordinator.url()));
        if let Some(pid) = coordinator.pid {
            vars.push((format!("RUNNEL_COORDINATOR_{id}_PID"), pid.to_string()));
        }
    }
    let mut text = format!(
        "# Runnel local cluster, written by scripts/cluster. Load with: . {}\n",
        quote(&dir.env_file().display().to_string())
    );
    for (name, value) in vars {
        text.push_str(&format!("export {name}={}\n", quote(&value)));
    }
    text
}

/// Quotes `value` for a POSIX shell, leaving plain values bare for other readers of the file.
fn quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,/:@%+=".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn given_plain_or_odd_values_should_quote_only_when_needed() {
        assert_eq!(
            quote("http://127.0.0.1:1,http://127.0.0.1:2"),
            "http://127.0.0.1:1,http://127.0.0.1:2"
        );
        assert_eq!(quote(""), "''");
        assert_eq!(quote("/tmp/my dir"), "'/tmp/my dir'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
