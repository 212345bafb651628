//! Request latency percentiles, from every measured latency kept and sorted.

use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// Percentiles of latencies given in nanoseconds (nearest-rank); all zero
/// when there are none.
pub fn percentiles(mut nanos: Vec<u64>) -> Percentiles {
    if nanos.is_empty() {
        return Percentiles::default();
    }
    nanos.sort_unstable();
    let rank = |q: f64| {
        let i = (q * nanos.len() as f64).ceil() as usize;
        to_ms(nanos[i.clamp(1, nanos.len()) - 1])
    };
    Percentiles {
        p50: rank(0.50),
        p99: rank(0.99),
        p999: rank(0.999),
        max: to_ms(nanos[nanos.len() - 1]),
    }
}

fn to_ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let p = percentiles((1..=1000).rev().map(|ms| ms * 1_000_000).collect());
        assert_eq!(p.p50, 500.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.p999, 999.0);
        assert_eq!(p.max, 1000.0);
        assert_eq!(percentiles(vec![]), Percentiles::default());
        assert_eq!(percentiles(vec![2_000_000]).p50, 2.0);
    }
}
