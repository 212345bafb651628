//! Runnel benchmarks: HTTP load generators for produce, consume and plain
//! GET against Runnel brokers, a leader-failover measurement, consumer-group
//! measurements (join and takeover times, commits, REST instances) (`runnel-bench`),
//! and the naive one-file produce server used as a ceiling (`runnel-baseline`).

pub mod admin;
pub mod baseline;
pub mod cli;
pub mod consume;
pub mod engine;
pub mod failover;
pub mod get;
pub mod groups;
pub mod http;
pub mod latency;
pub mod payload;
pub mod produce;
pub mod summary;
