//! Start-up plumbing every service shares.

use std::time::Duration;

/// How long start-up keeps retrying a dependency (etcd) before giving up.
pub const STARTUP_RETRY: Duration = Duration::from_secs(60);

/// Retries `op` with back-off (100 ms doubling to 2 s) for up to [`STARTUP_RETRY`], logging
/// each failure; the last error becomes "cannot {what}: {error}".
///
/// # Errors
/// That message, once the time is up.
pub async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut op: impl FnMut() -> F,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + STARTUP_RETRY;
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(%error, "cannot {what} yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(format!("cannot {what}: {error}")),
        }
    }
}
