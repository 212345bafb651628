//! Code shared by every Runnel service.
//!
//! # Layout
//! - [`error`]: the closed table of error codes (HTTP status, JSON `error_code`, retryability)
//!   and the JSON error body every service answers with.
//! - [`http`]: server plumbing shared by services: serving with graceful shutdown, readiness,
//!   the JSON fallback for unknown routes.
//! - [`meta`]: the etcd metadata schema (the only place keys are spelled) and its client.
//! - [`partitioner`]: Kafka's murmur2 key partitioner, so keyed records land where Kafka's
//!   Java client would put them.
//! - [`config`]: configuration-file support for clap-based service configs.
//! - [`startup`]: retrying dependencies while a service starts.
//! - [`telemetry`]: `tracing` setup.
//! - [`time`]: wall-clock helpers (milliseconds since the epoch, ISO-8601 rendering).
//!
//! `common` depends on no service crate.

pub mod config;
pub mod error;
pub mod http;
pub mod meta;
pub mod partitioner;
pub mod startup;
pub mod telemetry;
pub mod time;
