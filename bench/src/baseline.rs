//! `runnel-baseline`: the simplest possible produce server, as a ceiling for
//! the real broker. NDJSON records are parsed into borrowed raw values and
//! appended, length-prefixed, to one file with no index; a background task
//! fsyncs it on an interval.

pub mod log;
pub mod ndjson;
pub mod server;

pub use server::{Config, serve};
