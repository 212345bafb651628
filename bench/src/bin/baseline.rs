//! `runnel-baseline`: a bare axum server that appends NDJSON produce bodies to
//! one file with no index, fsyncing on an interval: the ceiling of the
//! simplest design, loaded with `runnel-bench produce --no-create`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use runnel_bench::baseline::{self, Config};

/// The naive produce server: one file, no index, interval fsync.
#[derive(Debug, Parser)]
#[command(name = "runnel-baseline", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The data file (created, or truncated if it exists).
    #[arg(long)]
    file: PathBuf,
    /// fsync period in milliseconds; 0 fsyncs before every answer.
    #[arg(long, default_value_t = 1000)]
    fsync_interval_ms: u64,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let config = Config {
        listen: args.listen,
        file: args.file,
        fsync_interval: Duration::from_millis(args.fsync_interval_ms),
    };
    let result = builder
        .build()
        .and_then(|rt| rt.block_on(baseline::serve(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runnel-baseline: {e}");
            ExitCode::FAILURE
        }
    }
}
