//! Serial console: point stdout and stderr at `/dev/console` (or `/dev/ttyS0`).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

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
                let stdin_open = unsafe { libc::fcntl(0, libc::F_GETFD) } != -1;
                let targets: &[i32] = if stdin_open { &[1, 2] } else { &[0, 1, 2] };
                for &t in targets {
                    if fd != t && unsafe { libc::dup2(fd, t) } == -1 {
                        return Err(io::Error::last_os_error());
                    }
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
