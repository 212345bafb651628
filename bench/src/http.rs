//! The HTTP client side of the bench: building the pooled client and turning
//! responses and transport failures into a body or a one-line error.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Client, Response};

/// Longest error body kept in an error message.
const MAX_ERROR_BODY: usize = 512;

/// A client whose pool holds one idle connection per worker, with Nagle off,
/// HTTP/1.1 only (one request in flight per connection) and a request timeout.
pub fn client(concurrency: u16, timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .pool_max_idle_per_host(usize::from(concurrency))
        .tcp_nodelay(true)
        .http1_only()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build HTTP client: {}", describe(&e)))
}

/// A transport error with its chain of causes, on one line.
pub fn describe(err: &reqwest::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
        source = cause.source();
    }
    msg
}

/// Reads the whole body (so the connection goes back to the pool) and
/// returns it for a 2xx answer, or `HTTP <status>: <body>` otherwise.
pub async fn body(resp: Response) -> Result<Bytes, String> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| describe(&e))?;
    if status.is_success() {
        Ok(bytes)
    } else {
        Err(status_error(status, &bytes))
    }
}

/// `HTTP <status>: <body>`, the body cut to a readable length.
pub fn status_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
    format!("HTTP {status}: {}", text.trim())
}

/// Sends a request and reads its body, as [`body`] does.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Bytes, String> {
    let resp = req.send().await.map_err(|e| describe(&e))?;
    body(resp).await
}
