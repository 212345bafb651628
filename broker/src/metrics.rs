//! Prometheus metrics of the broker, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::Offsets;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct RequestStats {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters updated on the request path; cheap atomics except the per-route table.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), RequestStats>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_appended: AtomicU64,
    pub records_read: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut table = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let stats = table
            .entry((route.to_string(), method.to_string(), status))
            .or_default();
        stats.count += 1;
        stats.sum_seconds += seconds;
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text; `partitions` gives log sizes and offsets of hosted partitions.
    pub fn render(&self, partitions: &BTreeMap<(String, u32), (u64, Offsets)>) -> String {
        let mut out = String::with_capacity(4096);
        let table = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.push_str("# HELP runnel_http_requests_total HTTP requests served.\n# TYPE runnel_http_requests_total counter\n");
        for ((route, method, status), stats) in &table {
            let _ = writeln!(
                out,
                "runnel_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                stats.count
            );
        }
        out.push_str("# HELP runnel_http_request_duration_seconds HTTP request latency.\n# TYPE runnel_http_request_duration_seconds histogram\n");
        let mut by_route: BTreeMap<(String, String), RequestStats> = BTreeMap::new();
        for ((route, method, _), stats) in &table {
            let merged = by_route.entry((route.clone(), method.clone())).or_default();
            merged.count += stats.count;
            merged.sum_seconds += stats.sum_seconds;
            for (m, s) in merged.buckets.iter_mut().zip(stats.buckets) {
                *m += s;
            }
        }
        for ((route, method), stats) in &by_route {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(
                    out,
                    "runnel_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "runnel_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "runnel_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "runnel_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        for (name, help, counter) in [
            (
                "runnel_bytes_in_total",
                "Request body bytes received.",
                &self.bytes_in,
            ),
            (
                "runnel_bytes_out_total",
                "Response body bytes sent.",
                &self.bytes_out,
            ),
            (
                "runnel_records_appended_total",
                "Records appended to local logs.",
                &self.records_appended,
            ),
            (
                "runnel_records_read_total",
                "Records returned to readers.",
                &self.records_read,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP runnel_log_size_bytes Bytes of all segments of a hosted partition.\n# TYPE runnel_log_size_bytes gauge\n");
        for ((topic, partition), (size, _)) in partitions {
            let _ = writeln!(
                out,
                "runnel_log_size_bytes{{topic=\"{topic}\",partition=\"{partition}\"}} {size}"
            );
        }
        out.push_str("# HELP runnel_log_end_offset Next offset to be written.\n# TYPE runnel_log_end_offset gauge\n");
        for ((topic, partition), (_, offsets)) in partitions {
            let _ = writeln!(
                out,
                "runnel_log_end_offset{{topic=\"{topic}\",partition=\"{partition}\"}} {}",
                offsets.log_end
            );
        }
        out.push_str("# HELP runnel_log_start_offset First offset still kept.\n# TYPE runnel_log_start_offset gauge\n");
        for ((topic, partition), (_, offsets)) in partitions {
            let _ = writeln!(
                out,
                "runnel_log_start_offset{{topic=\"{topic}\",partition=\"{partition}\"}} {}",
                offsets.log_start
            );
        }
        out
    }
}
