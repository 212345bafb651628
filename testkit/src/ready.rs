//! Bounded HTTP polling: asks one URL until an answer is accepted, the process exits or the
//! time is up. It must not sleep longer than a poll interval or know any service's API.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::error::{Error, Result};

/// Why [`poll`] gave up.
#[derive(Debug)]
pub(crate) enum PollFailure {
    /// The process exited.
    Exited(ExitStatus),
    /// The time ran out; holds the last answer or connection error.
    TimedOut(String),
}

/// Returns a client for probes: no connection pool (probes may run on different runtimes
/// over a shared process), no proxy (everything is on loopback), short timeouts.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn probe_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|error| Error::io("build an HTTP client", std::io::Error::other(error)))
}

/// GETs `url` until `accept(status, body)` returns `Ok`, `exited()` reports an exit, or
/// `timeout` passes. Polls quickly at first, then every 200 ms.
pub(crate) async fn poll<T>(
    url: &str,
    timeout: Duration,
    accept: impl Fn(u16, &str) -> Result<T, String>,
    mut exited: impl FnMut() -> Option<ExitStatus>,
) -> Result<T, PollFailure> {
    let client = probe_client().map_err(|error| PollFailure::TimedOut(error.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(20);
    loop {
        if let Some(status) = exited() {
            return Err(PollFailure::Exited(status));
        }
        let last = match client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) => match accept(status, &body) {
                        Ok(value) => return Ok(value),
                        Err(why) => why,
                    },
                    Err(error) => format!("{status}, body unreadable: {error}"),
                }
            }
            Err(error) => with_causes(&error),
        };
        if Instant::now() >= deadline {
            return Err(PollFailure::TimedOut(last));
        }
        sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

/// Accepts HTTP 200 whatever the body.
pub(crate) fn status_ok(status: u16, body: &str) -> Result<(), String> {
    if status == 200 {
        Ok(())
    } else {
        Err(format!("HTTP {status}: {}", shorten(body)))
    }
}

/// Cuts a body down to what fits in an error message.
pub(crate) fn shorten(body: &str) -> String {
    const MAX: usize = 200;
    match body.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_owned(),
    }
}

/// Formats an error with its causes, since reqwest's own message omits "connection refused".
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
