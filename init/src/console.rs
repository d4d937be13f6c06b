//! Serial console: point stdout and stderr at `/dev/console` (or `/dev/ttyS0`).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{fcntl, FcntlArg};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};

/// Candidate console devices, in order of preference.
pub const CONSOLES: &[&str] = &["/dev/console", "/dev/ttyS0"];

/// Opens the first console that works and `dup2`s it onto stdout and stderr
/// (and onto stdin when fd 0 is not open, so later files never get fd 0-2).
/// Needs `/dev` mounted. Returns the path used.
pub fn attach() -> io::Result<&'static str> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no console device");
    for path in CONSOLES {
        match OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(path) {
            Ok(f) => {
                let fd = f.as_raw_fd();
                // F_GETFD fails with EBADF when nothing is open on fd 0.
                let stdin_open = fcntl(io::stdin().as_fd(), FcntlArg::F_GETFD).is_ok();
                if !stdin_open && fd != 0 {
                    dup2_stdin(&f)?;
                }
                if fd != 1 {
                    dup2_stdout(&f)?;
                }
                if fd != 2 {
                    dup2_stderr(&f)?;
                }
                if fd <= 2 {
                    // The file landed on a standard descriptor: keep it open.
                    std::mem::forget(f);
                }
                return Ok(path);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
