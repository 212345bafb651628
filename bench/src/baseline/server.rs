//! The baseline's HTTP side: `POST /topics/{topic}` (NDJSON produce),
//! `GET /healthz`, the interval fsync task, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, extract::Path};
use serde_json::json;

use super::log::AppendLog;
use super::ndjson;

/// Largest produce body accepted.
const MAX_BODY: usize = 256 << 20;

/// Where to listen and write.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The one data file (truncated at start).
    pub file: PathBuf,
    /// fsync period; zero fsyncs before every answer.
    pub fsync_interval: Duration,
}

struct AppState {
    log: Arc<AppendLog>,
    sync_each_request: bool,
}

/// Serves until Ctrl-C or SIGTERM, then fsyncs once more.
pub async fn serve(config: Config) -> std::io::Result<()> {
    let log = Arc::new(AppendLog::create(&config.file)?);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    eprintln!(
        "runnel-baseline listening on {} writing {}",
        listener.local_addr()?,
        config.file.display()
    );
    let syncer = (!config.fsync_interval.is_zero())
        .then(|| tokio::spawn(sync_every(Arc::clone(&log), config.fsync_interval)));
    let state = Arc::new(AppState {
        log: Arc::clone(&log),
        sync_each_request: config.fsync_interval.is_zero(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { StatusCode::OK }))
        .route("/topics/{topic}", post(produce))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    if let Some(task) = syncer {
        task.abort();
    }
    sync(log).await
}

/// `POST /topics/{topic}`: parse, append in one write, answer the offsets.
/// The topic name is accepted and ignored: everything goes to one file.
async fn produce(
    State(state): State<Arc<AppState>>,
    Path(_topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ndjson_or_unset = headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|ct| ct.to_str().is_ok_and(|s| s.contains("ndjson")));
    if !ndjson_or_unset {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "only application/x-ndjson is served here",
        );
    }
    let batch = match ndjson::parse(&body) {
        Ok(b) if b.partitions.is_empty() => {
            return error(StatusCode::BAD_REQUEST, "no records in body");
        }
        Ok(b) => b,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let count = batch.partitions.len() as u64;
    let base = match state.log.append(&batch.frame, count) {
        Ok(base) => base,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("write: {e}")),
    };
    let synced = if state.sync_each_request {
        sync(Arc::clone(&state.log)).await
    } else {
        Ok(())
    };
    if let Err(e) = synced {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("fsync: {e}"));
    }
    Json(ndjson::ack(base, &batch.partitions)).into_response()
}

/// `{"error_code":N,"message":"..."}` with status N.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error_code": status.as_u16(), "message": message });
    (status, Json(body)).into_response()
}

/// fsyncs the log every `every` until aborted; failures are reported, not fatal.
async fn sync_every(log: Arc<AppendLog>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sync(Arc::clone(&log)).await {
            eprintln!("runnel-baseline: fsync failed: {e}");
        }
    }
}

/// fsyncs the log on the blocking pool.
async fn sync(log: Arc<AppendLog>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || log.sync())
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
