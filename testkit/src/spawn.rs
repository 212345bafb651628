//! The one place a child process is forked, in one of two ways: attached to this process's
//! life (tests) or detached into its own session (the launcher). It must not wait on children
//! or know what they run.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc;

/// How a child relates to the process that starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Launch {
    /// Dies with this process (the kernel SIGKILLs it when this process exits, however it
    /// exits) and is SIGKILLed when its handle drops. For tests.
    #[default]
    Attached,
    /// Runs in its own session and outlives this process; dropping its handle leaves it
    /// running. For the launcher.
    Detached,
}

/// Spawns `command` the way `launch` says.
pub(crate) fn spawn(mut command: Command, launch: Launch) -> io::Result<Child> {
    match launch {
        Launch::Detached => {
            // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            command.spawn()
        }
        Launch::Attached => {
            let parent = libc::pid_t::try_from(std::process::id()).map_err(io::Error::other)?;
            // SAFETY: prctl, getppid and raise are async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    // The parent may have died between fork and prctl; then nobody would kill us.
                    if libc::getppid() != parent {
                        libc::raise(libc::SIGKILL);
                    }
                    Ok(())
                });
            }
            spawn_on_keeper_thread(command)
        }
    }
}

type Request = (Command, mpsc::SyncSender<io::Result<Child>>);

/// Forks on a thread that lives as long as the process. PR_SET_PDEATHSIG fires when the
/// *thread* that forked exits, and test threads (which may own a shared etcd) end early.
fn spawn_on_keeper_thread(command: Command) -> io::Result<Child> {
    static KEEPER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Request>();
        // If the thread cannot start, the receiver is dropped and every send below fails.
        let _ = std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(command.spawn());
                }
            });
        sender
    });
    let (reply, answer) = mpsc::sync_channel(1);
    let unavailable = || io::Error::other("the testkit spawner thread is not running");
    keeper.send((command, reply)).map_err(|_| unavailable())?;
    answer.recv().map_err(|_| unavailable())?
}
