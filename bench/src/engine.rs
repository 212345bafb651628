//! The load loop every mode runs: N workers each with one request in flight,
//! a warm-up that is not counted, a stop at the deadline or when the count
//! budget is spent, and a progress line on stderr every second.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What one successful request carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct Done {
    /// Records sent or received.
    pub records: u64,
    /// Payload bytes (record values, or the body for plain GETs).
    pub bytes: u64,
}

/// A kind of request the workers repeat.
pub trait Workload: Send + Sync + 'static {
    /// Per-worker state (its broker, its random generator...).
    type Worker: Send + 'static;

    /// The state of worker `index` (0-based).
    fn worker(&self, index: usize) -> Self::Worker;

    /// Budget units one request takes at most (records per batch, 1 page,
    /// 1 request); the last request of a counted run may get fewer.
    fn unit(&self) -> u64;

    /// Sends one request worth `amount` budget units.
    fn request(
        &self,
        worker: &mut Self::Worker,
        amount: u64,
    ) -> impl Future<Output = Result<Done, String>> + Send;
}

/// How long and how hard to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Workers, i.e. requests in flight.
    pub concurrency: u16,
    /// Load before measuring, not counted.
    pub warmup: Duration,
    /// Measured time; `None` runs until the budget is spent.
    pub duration: Option<Duration>,
    /// Measured budget units (records, pages or requests); `None` is unbounded.
    pub budget: Option<u64>,
}

/// Counted results of the measured part of a run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Records in successful measured requests.
    pub records: u64,
    /// Successful measured requests.
    pub requests: u64,
    /// Payload bytes of successful measured requests.
    pub bytes: u64,
    /// Failed measured requests.
    pub errors: u64,
    /// The first error of the whole run, warm-up included.
    pub first_error: Option<String>,
    /// From the end of warm-up to the last worker's stop.
    pub elapsed: Duration,
    /// Latency of each successful measured request, in nanoseconds.
    pub latencies: Vec<u64>,
}

/// Counters over the whole run (warm-up included), read by the progress line.
#[derive(Default)]
struct Live {
    records: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

impl Live {
    fn snapshot(&self) -> [u64; 4] {
        [
            self.records.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        ]
    }
}

/// The measured budget left, shared by the workers.
struct Budget(Option<AtomicU64>);

impl Budget {
    /// Takes up to `unit` units; `None` once nothing is left.
    fn claim(&self, unit: u64) -> Option<u64> {
        let Some(left) = &self.0 else {
            return Some(unit);
        };
        let prev = left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                (r > 0).then_some(r.saturating_sub(unit))
            })
            .ok()?;
        Some(prev.min(unit))
    }
}

/// State shared by the workers of one run.
struct Shared<W> {
    workload: W,
    live: Live,
    budget: Budget,
    first_error: OnceLock<String>,
    measure_from: Instant,
    stop_at: Option<Instant>,
}

/// Runs `workload` according to `plan` and returns the measured totals.
pub async fn run<W: Workload>(workload: W, plan: Plan) -> Result<Totals, String> {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let shared = Arc::new(Shared {
        workload,
        live: Live::default(),
        budget: Budget(plan.budget.map(AtomicU64::new)),
        first_error: OnceLock::new(),
        measure_from,
        stop_at: plan.duration.map(|d| measure_from + d),
    });
    let progress = tokio::spawn(progress(Arc::clone(&shared), start));
    let workers: Vec<_> = (0..usize::from(plan.concurrency))
        .map(|i| tokio::spawn(work(Arc::clone(&shared), i)))
        .collect();
    let mut totals = Totals::default();
    let mut failure = None;
    for w in workers {
        match w.await {
            Ok(t) => {
                totals.records += t.records;
                totals.requests += t.requests;
                totals.bytes += t.bytes;
                totals.errors += t.errors;
                totals.latencies.extend(t.latencies);
            }
            Err(e) => failure = Some(format!("a worker died: {e}")),
        }
    }
    totals.elapsed = Instant::now().saturating_duration_since(measure_from);
    progress.abort();
    if let Some(e) = failure {
        return Err(e);
    }
    totals.first_error = shared.first_error.get().cloned();
    Ok(totals)
}

/// One worker: request after request until the deadline or the budget ends.
async fn work<W: Workload>(shared: Arc<Shared<W>>, index: usize) -> Totals {
    let mut state = shared.workload.worker(index);
    let unit = shared.workload.unit();
    let mut mine = Totals::default();
    loop {
        let t0 = Instant::now();
        if shared.stop_at.is_some_and(|end| t0 >= end) {
            break;
        }
        let measured = t0 >= shared.measure_from;
        let amount = if measured {
            match shared.budget.claim(unit) {
                Some(n) => n,
                None => break,
            }
        } else {
            unit
        };
        let result = shared.workload.request(&mut state, amount).await;
        let latency = t0.elapsed();
        match result {
            Ok(done) => {
                shared
                    .live
                    .records
                    .fetch_add(done.records, Ordering::Relaxed);
                shared.live.requests.fetch_add(1, Ordering::Relaxed);
                shared.live.bytes.fetch_add(done.bytes, Ordering::Relaxed);
                if measured {
                    mine.records += done.records;
                    mine.requests += 1;
                    mine.bytes += done.bytes;
                    mine.latencies
                        .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
                }
            }
            Err(e) => {
                shared.live.errors.fetch_add(1, Ordering::Relaxed);
                let _ = shared.first_error.set(e);
                if measured {
                    mine.errors += 1;
                }
            }
        }
    }
    mine
}

/// Prints one line a second to stderr: phase, rates over the last second, errors.
async fn progress<W: Workload>(shared: Arc<Shared<W>>, start: Instant) {
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at((start + second).into(), second);
    let mut prev = (start, shared.live.snapshot());
    loop {
        let now = tick.tick().await.into_std();
        let snap = shared.live.snapshot();
        let dt = now
            .saturating_duration_since(prev.0)
            .as_secs_f64()
            .max(1e-9);
        let rate = |i: usize| (snap[i] - prev.1[i]) as f64 / dt;
        // The phase the last second started in.
        let phase = if prev.0 < shared.measure_from {
            "warmup"
        } else {
            "measure"
        };
        eprintln!(
            "[{:6.1}s] {phase:7} {:>11.0} rec/s {:>9.0} req/s {:>9.2} MB/s  errors {}",
            now.saturating_duration_since(start).as_secs_f64(),
            rate(0),
            rate(1),
            rate(2) / MB,
            snap[3],
        );
        prev = (now, snap);
    }
}

/// Bytes in the MB of MB/s (MiB, as the Kafka perf tools count).
pub const MB: f64 = 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Workload for Fixed {
        type Worker = ();
        fn worker(&self, _: usize) {}
        fn unit(&self) -> u64 {
            10
        }
        async fn request(&self, _: &mut (), amount: u64) -> Result<Done, String> {
            tokio::task::yield_now().await;
            if amount == 10 {
                Ok(Done {
                    records: amount,
                    bytes: amount * 3,
                })
            } else {
                Err(format!("partial {amount}"))
            }
        }
    }

    #[test]
    fn budget_claims_whole_then_partial_then_none() {
        let b = Budget(Some(AtomicU64::new(25)));
        assert_eq!(b.claim(10), Some(10));
        assert_eq!(b.claim(10), Some(10));
        assert_eq!(b.claim(10), Some(5));
        assert_eq!(b.claim(10), None);
        assert_eq!(Budget(None).claim(7), Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counted_run_stops_at_budget() {
        let plan = Plan {
            concurrency: 4,
            warmup: Duration::ZERO,
            duration: None,
            budget: Some(1005),
        };
        let t = run(Fixed, plan).await.unwrap();
        assert_eq!(t.records, 1000);
        assert_eq!(t.requests, 100);
        assert_eq!(t.bytes, 3000);
        assert_eq!(t.errors, 1);
        assert_eq!(t.latencies.len(), 100);
        assert_eq!(t.first_error.as_deref(), Some("partial 5"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timed_run_stops_at_deadline() {
        let plan = Plan {
            concurrency: 2,
            warmup: Duration::from_millis(50),
            duration: Some(Duration::from_millis(100)),
            budget: None,
        };
        let t = run(Fixed, plan).await.unwrap();
        assert!(t.requests > 0);
        assert!(t.elapsed >= Duration::from_millis(100));
        assert!(t.elapsed < Duration::from_secs(2));
    }
}
