//! Kernel file systems PID 1 mounts: devtmpfs, proc, sysfs and two tmpfs.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use crate::InitError;

/// One mount PID 1 performs.
#[derive(Debug, Clone, Copy)]
pub struct MountSpec {
    /// File system type and source.
    pub fstype: &'static str,
    /// Mount point.
    pub target: &'static str,
    /// Mount flags.
    pub flags: MsFlags,
    /// File system data (`mode=...`).
    pub data: Option<&'static str>,
}

/// The mounts, in order (`/dev` first: the console lives there).
pub fn specs() -> [MountSpec; 5] {
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    [
        MountSpec { fstype: "devtmpfs", target: "/dev", flags: MsFlags::MS_NOSUID, data: Some("mode=0755") },
        MountSpec { fstype: "proc", target: "/proc", flags: common | MsFlags::MS_NOEXEC, data: None },
        MountSpec { fstype: "sysfs", target: "/sys", flags: common | MsFlags::MS_NOEXEC, data: None },
        MountSpec {
            fstype: "tmpfs",
            target: "/run",
            flags: common | MsFlags::MS_NOEXEC,
            data: Some("mode=0755,size=16m"),
        },
        MountSpec {
            fstype: "tmpfs",
            target: "/tmp",
            flags: common | MsFlags::MS_NOEXEC,
            data: Some("mode=1777,size=64m"),
        },
    ]
}

/// Mounts everything in [`specs`]. A missing mount point is created when the
/// root is writable; on a read-only root the image must ship the empty
/// directories. Something already mounted there (`EBUSY`, e.g. a kernel with
/// `CONFIG_DEVTMPFS_MOUNT`) counts as success.
pub fn mount_all() -> Result<(), InitError> {
    for spec in specs() {
        mount_one(&spec)?;
    }
    Ok(())
}

/// Remounts the root file system (the unpacked initramfs) read-only, once
/// the kernel file systems are mounted on it: from here on only /run and
/// /tmp (tmpfs) are writable.
pub fn make_root_read_only() -> Result<(), InitError> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|source| InitError::Mount { target: "/".into(), source })
}

fn mount_one(spec: &MountSpec) -> Result<(), InitError> {
    let target = Path::new(spec.target);
    if !target.is_dir() {
        if let Err(e) = std::fs::create_dir_all(target) {
            log!("cannot create {}: {e}", spec.target);
        }
    }
    match mount(Some(spec.fstype), target, Some(spec.fstype), spec.flags, spec.data) {
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(source) => Err(InitError::Mount { target: target.to_path_buf(), source }),
    }
}
