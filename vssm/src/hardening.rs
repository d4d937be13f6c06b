//! Process hardening for a process that holds keys: no core dumps, no
//! ptrace by other users, memory locked so keys are not swapped out, and
//! enough file descriptors for the connection caps of every port.
//! Each step warns instead of failing where the OS does not allow it.

use nix::sys::mman::{mlockall, MlockAllFlags};
use nix::sys::prctl::set_dumpable;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// `MCL_ONFAULT` (Linux 4.4+): nix 0.32 has no named flag for it.
const MCL_ONFAULT: MlockAllFlags = MlockAllFlags::from_bits_retain(libc::MCL_ONFAULT);

/// Applies every protection this OS allows; returns warnings for the rest.
pub fn harden_process() -> Vec<String> {
    [no_core_dumps(), lock_memory(), enough_file_descriptors()].into_iter().filter_map(Result::err).collect()
}

/// File descriptors the ports' connection caps can use at once (API and
/// sync 4,096 each, join and health 256 each) with room for the rest.
const WANTED_FILE_DESCRIPTORS: u64 = 16_384;

/// Raises the soft limit of open files towards [`WANTED_FILE_DESCRIPTORS`]
/// (never above the hard limit): the common default of 1,024 would refuse
/// connections at accept long before the caps, where nobody is evicted.
fn enough_file_descriptors() -> Result<(), String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    let wanted = WANTED_FILE_DESCRIPTORS.min(hard);
    if soft >= wanted {
        return Ok(());
    }
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    if wanted < WANTED_FILE_DESCRIPTORS {
        return Err(format!("open-file limit {hard}: connections beyond it are refused at accept"));
    }
    Ok(())
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

    #[test]
    fn core_dumps_off() {
        // Not lock_memory: mlockall(MCL_FUTURE) would pin every other test's memory.
        no_core_dumps().unwrap();
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (0, 0));
        assert!(!get_dumpable().unwrap());
        assert_eq!(MCL_ONFAULT.bits(), 4);
    }

    #[test]
    fn the_open_file_limit_is_raised_within_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let _ = enough_file_descriptors();
        let (soft, hard_after) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(hard_after, hard);
        assert!(soft >= WANTED_FILE_DESCRIPTORS.min(hard), "{soft}");
    }
}
