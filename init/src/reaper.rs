//! Zombie reaper. As PID 1 this process inherits every orphan and must
//! `waitpid` them.
//!
//! [`start`] blocks `SIGCHLD` in the calling thread (threads created later
//! inherit the mask) and starts a thread that waits for it on a `signalfd`
//! and then reaps with `waitpid(-1, WNOHANG)` until nothing is
//! left. It also reaps every few seconds in case a `SIGCHLD` went to a thread
//! created before the mask was set.
//!
//! Consequence: code in this process must not wait for its own children with
//! `waitpid(pid)` (std `Child::wait`, `tokio::process`), since the reaper may
//! collect them first. `vssm` starts no child processes.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

static STARTED: AtomicBool = AtomicBool::new(false);

/// How often the reaper reaps without a signal.
pub const POLL: Duration = Duration::from_secs(5);

/// Reaps every exited child without blocking; returns how many.
pub fn reap_all() -> usize {
    let mut n = 0;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return n,
            Ok(_) => n += 1,
            Err(Errno::EINTR) => continue,
            Err(_) => return n,
        }
    }
}

/// Blocks `SIGCHLD`, opens a `signalfd` for it and starts the reaper thread
/// (once; later calls do nothing).
pub fn start() -> io::Result<()> {
    if STARTED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
    // Non-blocking: the thread drains every queued SIGCHLD after each poll.
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(io::Error::from)?;
    let timeout = PollTimeout::try_from(POLL).unwrap_or(PollTimeout::MAX);
    std::thread::Builder::new().name("reaper".into()).spawn(move || loop {
        // Returns on SIGCHLD, on timeout or EINTR: reap in every case.
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout);
        while let Ok(Some(_)) = sfd.read_signal() {}
        reap_all();
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaps_children() {
        // A child that exits at once, never waited for by std: reap_all collects it.
        let child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = Pid::from_raw(child.id() as i32);
        drop(child);
        let mut got = 0;
        for _ in 0..200 {
            got += reap_all();
            if got > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(got >= 1);
        assert_eq!(waitpid(pid, Some(WaitPidFlag::WNOHANG)), Err(Errno::ECHILD));
    }
}
