//! Process hardening for a process that holds keys: no core dumps, no
//! ptrace by other users, memory locked so keys are not swapped out.
//! Each step warns instead of failing where the OS does not allow it.

use nix::sys::mman::{mlockall, MlockAllFlags};
use nix::sys::prctl::set_dumpable;
use nix::sys::resource::{setrlimit, Resource};

/// `MCL_ONFAULT` (Linux 4.4+): nix 0.32 has no named flag for it.
const MCL_ONFAULT: MlockAllFlags = MlockAllFlags::from_bits_retain(libc::MCL_ONFAULT);

/// Applies every protection this OS allows; returns warnings for the rest.
pub fn harden_process() -> Vec<String> {
    [no_core_dumps(), lock_memory()].into_iter().filter_map(Result::err).collect()
}

/// Core size limit 0 and not dumpable: no core dump even if the limit is
/// raised again, and no ptrace or /proc/PID/mem access by other non-root
/// processes.
fn no_core_dumps() -> Result<(), String> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("cannot disable core dumps: {e}"))?;
    set_dumpable(false).map_err(|e| format!("cannot mark the process undumpable: {e}"))
}

/// Locks current and future pages. MCL_ONFAULT locks pages as they are
/// touched, so resident memory does not grow to every mapping's full size
/// (thread stacks etc.).
fn lock_memory() -> Result<(), String> {
    mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE | MCL_ONFAULT).map_err(|e| {
        format!("cannot lock memory (keys could be swapped out; raise RLIMIT_MEMLOCK or run with CAP_IPC_LOCK): {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::prctl::get_dumpable;
    use nix::sys::resource::getrlimit;

    #[test]
    fn core_dumps_off() {
        // Not lock_memory: mlockall(MCL_FUTURE) would pin every other test's memory.
        no_core_dumps().unwrap();
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (0, 0));
        assert!(!get_dumpable().unwrap());
        assert_eq!(MCL_ONFAULT.bits(), 4);
    }
}
