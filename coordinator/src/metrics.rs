//! Prometheus metrics of the coordinator, in the text exposition format: counters updated by
//! the shard writers and sweeps, gauges read from the shards at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ownership::Ownership;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Offset commits written to `__consumer_offsets`.
    pub commits: AtomicU64,
    /// Produce requests the shard writers made, and those that failed.
    pub log_writes: AtomicU64,
    pub log_write_errors: AtomicU64,
    /// Members removed because their session or rebalance timeout ran out.
    pub members_expired: AtomicU64,
    /// REST instances removed after their idle timeout.
    pub instances_expired: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self, ownership: &Ownership) -> String {
        let (mut loaded, mut groups, mut members, mut instances) = (0, 0, 0, 0);
        let shards = ownership.local_shards();
        for shard in &shards {
            if shard.is_loaded() {
                loaded += 1;
                let data = shard.data();
                groups += data.groups.len();
                for g in data.groups.values() {
                    members += g.group.members.len();
                    instances += g.instances.len();
                }
            }
        }
        let mut out = String::with_capacity(1024);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let counter = |c: &AtomicU64| c.load(Ordering::Relaxed);
        metric(
            "runnel_coordinator_shards_owned",
            "gauge",
            "Group shards this coordinator holds.",
            shards.len() as u64,
        );
        metric(
            "runnel_coordinator_shards_loaded",
            "gauge",
            "Held shards replayed and serving.",
            loaded,
        );
        metric(
            "runnel_coordinator_groups",
            "gauge",
            "Groups in the loaded shards.",
            groups as u64,
        );
        metric(
            "runnel_coordinator_members",
            "gauge",
            "Group members (clients and REST instances with a subscription).",
            members as u64,
        );
        metric(
            "runnel_coordinator_rest_instances",
            "gauge",
            "REST consumer instances.",
            instances as u64,
        );
        metric(
            "runnel_coordinator_offset_commits_total",
            "counter",
            "Offset commits written to __consumer_offsets.",
            counter(&self.commits),
        );
        metric(
            "runnel_coordinator_log_writes_total",
            "counter",
            "Produce requests to __consumer_offsets.",
            counter(&self.log_writes),
        );
        metric(
            "runnel_coordinator_log_write_errors_total",
            "counter",
            "Failed produce requests to __consumer_offsets.",
            counter(&self.log_write_errors),
        );
        metric(
            "runnel_coordinator_members_expired_total",
            "counter",
            "Members removed by session or rebalance timeout.",
            counter(&self.members_expired),
        );
        metric(
            "runnel_coordinator_instances_expired_total",
            "counter",
            "REST instances removed after their idle timeout.",
            counter(&self.instances_expired),
        );
        out
    }
}
