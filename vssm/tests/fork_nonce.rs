//! A forked child never serves the nonces its parent serves: the child
//! inherits a copy of the parent's per-thread nonce pool and must refill it
//! (`vssm::crypto::nonce`). Forks for real, which needs `unsafe` (the
//! library itself forbids it).

use std::io::Read;
use std::os::fd::FromRawFd;
use vssm::crypto::nonce::fill_nonce;

fn nonce() -> [u8; 12] {
    let mut nonce = [0u8; 12];
    fill_nonce(&mut nonce).expect("nonce");
    nonce
}

#[test]
fn a_forked_child_does_not_serve_its_parents_next_nonces() {
    // The pool of this thread is filled: the next nonces sit in memory.
    nonce();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only takes nonces from its own copy of this
    // thread's pool (a getrandom system call at most), writes them to the
    // pipe and leaves with _exit, which runs none of the parent's destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.extend_from_slice(&nonce());
        }
        // SAFETY: writes `taken` to the pipe's write end, then ends the child.
        unsafe {
            libc::write(fds[1], taken.as_ptr().cast(), taken.len());
            libc::_exit(0);
        }
    }
    // SAFETY: the parent never writes; closing its write end lets the read below end.
    unsafe { libc::close(fds[1]) };
    let parents: Vec<[u8; 12]> = (0..4).map(|_| nonce()).collect();
    let mut child = Vec::new();
    // SAFETY: fds[0] is the pipe's read end, owned by this File from here on.
    let mut reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    reader.read_to_end(&mut child).expect("read the child's nonces");
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(child.len(), 4 * 12, "the child did not report its nonces");
    for (index, child_nonce) in child.chunks(12).enumerate() {
        assert!(!parents.iter().any(|p| p == child_nonce), "child nonce {index} is one the parent served too");
    }
}
