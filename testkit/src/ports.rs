//! Free loopback ports. A port is found by binding `127.0.0.1:0` and is remembered so this
//! process never hands it out twice, even after the probe socket is closed.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Returns a loopback TCP port that was free a moment ago and that this process has not
/// returned before.
///
/// Another process may still take it before it is bound; the window is small because the
/// kernel hands out ephemeral ports in rotation.
///
/// # Errors
/// When no socket can be bound on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    let mut last = None;
    for _ in 0..64 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|source| Error::io("bind 127.0.0.1:0", source))?
            .port();
        if handed_out.insert(port) {
            return Ok(port);
        }
        last = Some(port);
    }
    Err(Error::io(
        "find an unused loopback port",
        std::io::Error::other(format!(
            "the kernel kept returning used ports, last {last:?}"
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_many_calls_should_never_repeat_a_port() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().expect("free port")).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }
}
