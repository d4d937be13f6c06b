//! Process hardening for a process that holds keys: no core dumps, no
//! ptrace by other users, memory locked so keys are not swapped out.
//! Each step warns instead of failing where the OS does not allow it.

/// Applies every protection this OS allows; returns warnings for the rest.
pub fn harden_process() -> Vec<String> {
    let mut warnings = Vec::new();
    // SAFETY: plain syscalls on this process with valid arguments.
    unsafe {
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0 {
            warnings.push(format!("cannot disable core dumps: {}", std::io::Error::last_os_error()));
        }
        // Not dumpable: no core dump even if the limit is raised, and no
        // ptrace or /proc/PID/mem access by other non-root processes.
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            warnings.push(format!("cannot mark the process undumpable: {}", std::io::Error::last_os_error()));
        }
        // MCL_ONFAULT locks pages as they are touched, so resident memory
        // does not grow to every mapping's full size (thread stacks etc.).
        if libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) != 0 {
            warnings.push(format!(
                "cannot lock memory (keys could be swapped out; raise RLIMIT_MEMLOCK or run with CAP_IPC_LOCK): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    warnings
}
