//! HTTP plumbing every service shares: serving with graceful shutdown, readiness state,
//! JSON answers for unknown routes and methods, and the shutdown signal.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::error::{ApiError, ErrorCode};

/// Serves `router` on `listener` until `shutdown` completes, then drains in-flight requests.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// Whether the service is ready to take traffic; `/readyz` answers from it.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The `/readyz` answer: 200 when ready, a JSON 503 otherwise.
    pub fn response(&self) -> Response {
        if self.is_ready() {
            (StatusCode::OK, "ready\n").into_response()
        } else {
            ApiError::new(ErrorCode::NotReady, "service is not ready").into_response()
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// How long a relayed consumer-group request may take: a records poll waits up to its
/// `timeout` (ms, at most 60 s), everything else answers within the coordinator's write
/// deadline. Bounded so that a paused coordinator fails the request instead of holding it.
pub fn group_relay_timeout(uri: &axum::http::Uri) -> std::time::Duration {
    const MARGIN_MS: u64 = 15_000;
    let poll_ms = if uri.path().ends_with("/records") {
        uri.query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("timeout=")))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1_000)
            .min(60_000)
    } else {
        0
    };
    std::time::Duration::from_millis(poll_ms + MARGIN_MS)
}

/// The consumer group a group-scoped path names (`/consumers/{g}/…`, `/v1/groups/{g}/…`,
/// `/v3/clusters/{c}/consumer-groups/{g}/…`), percent-decoded; `None` for other paths.
/// Brokers and coordinators both route by it, so both hash the same group id.
pub fn group_in_path(path: &str) -> Option<String> {
    let rest = path
        .strip_prefix("/consumers/")
        .or_else(|| path.strip_prefix("/v1/groups/"))
        .or_else(|| {
            let after = path.strip_prefix("/v3/clusters/")?;
            after.split_once("/consumer-groups/").map(|(_, g)| g)
        })?;
    rest.split('/')
        .next()
        .filter(|g| !g.is_empty())
        .map(percent_decode)
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::group_in_path;

    #[test]
    fn finds_the_group_in_every_group_path() {
        let some = |g: &str| Some(g.to_string());
        assert_eq!(group_in_path("/consumers/g1/instances/i"), some("g1"));
        assert_eq!(group_in_path("/consumers/g1"), some("g1"));
        assert_eq!(group_in_path("/v1/groups/g2/heartbeat"), some("g2"));
        assert_eq!(
            group_in_path("/v3/clusters/c/consumer-groups/g3/lags"),
            some("g3")
        );
        assert_eq!(group_in_path("/consumers/a%20b%2Fc"), some("a b/c"));
        assert_eq!(group_in_path("/consumers/100%"), some("100%"));
        assert_eq!(group_in_path("/v3/clusters/c/consumer-groups"), None);
        assert_eq!(group_in_path("/v1/groups"), None);
        assert_eq!(group_in_path("/topics/t"), None);
    }
}
