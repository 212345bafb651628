//! The final report of a run: totals, rates and latency percentiles, as
//! readable text or as one JSON line for scripts.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{MB, Totals};
use crate::latency::{self, Percentiles};

/// What a run measured, plus the settings it ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `produce`, `consume` or `get`.
    pub mode: &'static str,
    /// Broker URLs loaded.
    pub urls: Vec<String>,
    /// Mode settings (topic, form, sizes, concurrency...).
    pub params: Map<String, Value>,
    /// Measured seconds.
    pub elapsed_s: f64,
    /// Records in successful requests.
    pub records: u64,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// First error seen (warm-up included), if any.
    pub first_error: Option<String>,
    /// Records per second.
    pub records_per_sec: f64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Payload MiB per second (record values; response bodies for `get`).
    pub mb_per_sec: f64,
    /// Latency of successful requests.
    pub latency_ms: Percentiles,
}

impl Summary {
    /// Builds the summary of `totals` for `mode`.
    pub fn new(
        mode: &'static str,
        urls: Vec<String>,
        params: Map<String, Value>,
        totals: Totals,
    ) -> Self {
        let secs = totals.elapsed.as_secs_f64();
        let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        Summary {
            mode,
            urls,
            params,
            elapsed_s: secs,
            records: totals.records,
            requests: totals.requests,
            errors: totals.errors,
            first_error: totals.first_error,
            records_per_sec: per_sec(totals.records as f64),
            requests_per_sec: per_sec(totals.requests as f64),
            mb_per_sec: per_sec(totals.bytes as f64 / MB),
            latency_ms: latency::percentiles(totals.latencies),
        }
    }

    /// The summary as one JSON line.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        writeln!(f, "{} against {}", self.mode, self.urls.join(","))?;
        writeln!(f, "  settings  {}", params.join(" "))?;
        writeln!(
            f,
            "  measured  {:.2} s: {} records, {} requests, {} errors",
            self.elapsed_s, self.records, self.requests, self.errors
        )?;
        writeln!(
            f,
            "  rate      {:.0} records/s, {:.0} requests/s, {:.2} MB/s",
            self.records_per_sec, self.requests_per_sec, self.mb_per_sec
        )?;
        let l = &self.latency_ms;
        write!(
            f,
            "  latency   p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms",
            l.p50, l.p99, l.p999, l.max
        )?;
        if let Some(e) = &self.first_error {
            write!(f, "\n  first error: {e}")?;
        }
        Ok(())
    }
}
