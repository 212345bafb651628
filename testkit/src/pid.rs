//! Signals and liveness of raw pids, including processes this process did not spawn (the
//! launcher's `down` runs in a later invocation than its `up`). Liveness reads `/proc`, so a
//! zombie counts as gone and a recycled pid is told apart by its command line.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// What `/proc` says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// Running or sleeping.
    Running,
    /// Stopped by SIGSTOP (or traced).
    Stopped,
    /// Exited, a zombie, or now another program.
    Gone,
}

/// Returns the state of `pid`. With `marker`, a process none of whose arguments equals
/// `marker` counts as [`PidState::Gone`]: the pid was recycled.
pub fn state(pid: u32, marker: Option<&OsStr>) -> PidState {
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return PidState::Gone;
    };
    // The command name in parentheses may itself hold spaces and parentheses.
    let state = stat
        .iter()
        .rposition(|&byte| byte == b')')
        .and_then(|end| stat.get(end + 2));
    let state = match state {
        Some(b'Z' | b'X' | b'x') | None => return PidState::Gone,
        Some(b'T' | b't') => PidState::Stopped,
        Some(_) => PidState::Running,
    };
    if let Some(marker) = marker {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return PidState::Gone;
        };
        if !cmdline
            .split(|&byte| byte == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            return PidState::Gone;
        }
    }
    state
}

/// Sends `signal` to `pid`.
///
/// # Errors
/// When the pid does not exist or may not be signalled.
pub fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(pid, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `pid` is [`PidState::Gone`], for at most `timeout`; returns whether it is.
pub async fn wait_gone(pid: u32, marker: Option<&OsStr>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if state(pid, marker) == PidState::Gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// How [`terminate`] ended a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited after SIGTERM (or was already gone).
    Exited,
    /// It ignored SIGTERM for the whole timeout and was SIGKILLed.
    Killed,
}

/// Sends SIGTERM (and SIGCONT, so a stopped process can act on it) to `pid`, waits up to
/// `timeout` for it to go, then SIGKILLs it and waits until it is gone.
pub async fn terminate(pid: u32, marker: Option<&OsStr>, timeout: Duration) -> Termination {
    if state(pid, marker) == PidState::Gone {
        return Termination::Exited;
    }
    // Errors mean it exited meanwhile; the wait below sees that.
    let _ = send_signal(pid, libc::SIGTERM);
    let _ = send_signal(pid, libc::SIGCONT);
    if wait_gone(pid, marker, timeout).await {
        return Termination::Exited;
    }
    let _ = send_signal(pid, libc::SIGKILL);
    wait_gone(pid, marker, Duration::from_secs(10)).await;
    Termination::Killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_this_process_should_be_running_and_given_a_foreign_marker_gone() {
        let me = std::process::id();
        assert_eq!(state(me, None), PidState::Running);
        assert_eq!(
            state(me, Some(OsStr::new("no-such-argument-xyz"))),
            PidState::Gone
        );
        assert_eq!(state(u32::MAX / 2, None), PidState::Gone);
    }
}
