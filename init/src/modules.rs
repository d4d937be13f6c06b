//! Kernel modules: find the `.ko` files the image ships, order them by their
//! dependencies and load them with `finit_module(2)`.
//!
//! The order comes from `modules.dep` when the image ships it (a topological
//! sort of the dependency graph; a cycle is an error) and otherwise from
//! [`BUILTIN_ORDER`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

use crate::InitError;

/// Load order used when there is no `modules.dep`: virtio (qemu), then ENA
/// (AWS Nitro), then what the power-button reader needs (`evdev` for
/// `/dev/input/event*`, `button` for the ACPI power button) when those are
/// modules rather than built in. Unknown modules load afterwards by name.
pub const BUILTIN_ORDER: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio-rng",
    "ena",
    "evdev",
    "button",
];

/// The sysctl that, once 1, refuses every later module load until reboot.
pub const MODULES_DISABLED: &str = "/proc/sys/kernel/modules_disabled";

/// Turns module loading off for the rest of the boot (writes `1` to
/// `switch`, normally [`MODULES_DISABLED`]): after the image's own modules
/// are in, code that gets to run in the appliance cannot load a kernel
/// module (a rootkit) even with every capability.
pub fn disable_further_loading(switch: &Path) -> io::Result<()> {
    std::fs::write(switch, b"1")
}

/// The kernel's name for a module file: the file name without `.ko` (or a
/// compressed `.ko.*` suffix), with `-` folded to `_` (`virtio-rng.ko` is
/// module `virtio_rng`).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = match file.find(".ko") {
        Some(i) => &file[..i],
        None => file,
    };
    stem.replace('-', "_")
}

/// One line of `modules.dep`: a module's path (relative to the release
/// directory) and the paths of the modules it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepEntry {
    /// Path of the module, as written in `modules.dep`.
    pub path: String,
    /// Names (see [`module_name`]) of its direct and indirect dependencies.
    pub deps: Vec<String>,
}

/// Parses `modules.dep` (`path: dep-path dep-path ...` per line) into a map
/// from module name to entry. Malformed lines are skipped.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, DepEntry> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((path, rest)) = line.split_once(':') else {
            continue;
        };
        let path = path.trim();
        if path.is_empty() {
            continue;
        }
        let deps = rest.split_whitespace().map(module_name).collect();
        map.insert(module_name(path), DepEntry { path: path.to_string(), deps });
    }
    map
}

/// The result of ordering: modules to load, in order, and dependencies that
/// are needed but not shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    /// `(module name, file)` in load order.
    pub order: Vec<(String, PathBuf)>,
    /// Dependencies (or, without `modules.dep`, built-in modules) not found.
    pub missing: Vec<String>,
}

fn builtin_rank(name: &str) -> usize {
    BUILTIN_ORDER.iter().position(|b| module_name(b) == name).unwrap_or(BUILTIN_ORDER.len())
}

/// Orders the `present` module files. With `dep` (parsed `modules.dep`),
/// every module comes after its dependencies (topological order; ties are
/// broken by [`BUILTIN_ORDER`] then by name) and a cycle is an error naming
/// it. Without `dep`, modules follow [`BUILTIN_ORDER`], unknown ones last.
pub fn plan(present: &[PathBuf], dep: Option<&BTreeMap<String, DepEntry>>) -> Result<LoadPlan, InitError> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for p in present {
        files.insert(module_name(&p.to_string_lossy()), p.clone());
    }
    let mut roots: Vec<&String> = files.keys().collect();
    roots.sort_by_key(|n| (builtin_rank(n), (*n).clone()));

    let mut out = LoadPlan::default();
    let Some(dep) = dep else {
        out.order = roots.into_iter().map(|n| (n.clone(), files[n].clone())).collect();
        out.missing = BUILTIN_ORDER.iter().map(|b| module_name(b)).filter(|n| !files.contains_key(n)).collect();
        return Ok(out);
    };

    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: HashMap<String, Mark> = HashMap::new();
    let mut missing = BTreeSet::new();
    // Iterative DFS so a long chain cannot overflow the stack.
    for root in roots {
        if marks.contains_key(root) {
            continue;
        }
        // Stack of (name, next dependency index); `path` mirrors it.
        let mut stack: Vec<(String, usize)> = vec![(root.clone(), 0)];
        marks.insert(root.clone(), Mark::Visiting);
        while let Some((name, idx)) = stack.last_mut() {
            let deps = dep.get(name.as_str()).map(|e| e.deps.as_slice()).unwrap_or(&[]);
            if *idx < deps.len() {
                let d = deps[*idx].clone();
                *idx += 1;
                if !files.contains_key(&d) {
                    missing.insert(d);
                    continue;
                }
                match marks.get(&d) {
                    Some(Mark::Done) => {}
                    Some(Mark::Visiting) => {
                        let start = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[start..].iter().map(|(n, _)| n.as_str()).collect();
                        cycle.push(&d);
                        return Err(InitError::Modules(format!("dependency cycle: {}", cycle.join(" -> "))));
                    }
                    None => {
                        marks.insert(d.clone(), Mark::Visiting);
                        stack.push((d, 0));
                    }
                }
            } else {
                let name = name.clone();
                stack.pop();
                marks.insert(name.clone(), Mark::Done);
                let file = files[&name].clone();
                out.order.push((name, file));
            }
        }
    }
    out.missing = missing.into_iter().collect();
    Ok(out)
}

/// What [`load_all`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Modules loaded now.
    pub loaded: Vec<String>,
    /// Modules the kernel already had (`EEXIST`).
    pub already: Vec<String>,
    /// Modules that failed, with the error.
    pub failed: Vec<(String, Errno)>,
    /// Modules needed or expected but not shipped.
    pub missing: Vec<String>,
}

/// The directory holding the modules and `modules.dep`: `dir` itself if it
/// has `modules.dep`, else `dir/$(uname -r)` if that exists, else `dir`.
pub fn release_dir(dir: &Path) -> PathBuf {
    if dir.join("modules.dep").is_file() {
        return dir.to_path_buf();
    }
    if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        let sub = dir.join(release.trim());
        if sub.is_dir() {
            return sub;
        }
    }
    dir.to_path_buf()
}

/// All files under `dir` (recursively) whose name ends in `.ko`; compressed
/// modules (`.ko.xz` etc.) are reported in the second list since they cannot
/// be loaded here.
pub fn find_modules(dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut found = Vec::new();
    let mut compressed = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if d == dir => return Err(e),
            Err(_) => continue,
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                dirs.push(path);
            } else {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".ko") {
                    found.push(path);
                } else if name.contains(".ko.") {
                    compressed.push(path);
                }
            }
        }
    }
    found.sort();
    compressed.sort();
    Ok((found, compressed))
}

/// Loads every `.ko` under `modules_dir` in dependency order. `EEXIST` counts
/// as success; a failing or missing module is a warning, not an error (the
/// boot fails later if the NIC does not appear). Only a dependency cycle is
/// an error. A missing `modules_dir` means nothing to load.
pub fn load_all(modules_dir: &Path) -> Result<LoadReport, InitError> {
    let base = release_dir(modules_dir);
    let (present, compressed) = match find_modules(&base) {
        Ok(v) => v,
        Err(e) => {
            log!("modules: cannot read {}: {e}", base.display());
            return Ok(LoadReport::default());
        }
    };
    for c in &compressed {
        log!("modules: skipping compressed module {}", c.display());
    }
    let dep = std::fs::read_to_string(base.join("modules.dep")).ok().map(|t| parse_modules_dep(&t));
    let plan = plan(&present, dep.as_ref())?;
    let mut report = LoadReport { missing: plan.missing, ..LoadReport::default() };
    for m in &report.missing {
        log!("modules: warning: {m} not found");
    }
    for (name, path) in plan.order {
        match load_one(&path) {
            Ok(()) => {
                log!("modules: loaded {name}");
                report.loaded.push(name);
            }
            Err(Errno::EEXIST) => report.already.push(name),
            Err(e) => {
                log!("modules: warning: {name} ({}): {e}", path.display());
                report.failed.push((name, e));
            }
        }
    }
    Ok(report)
}

/// Loads one module file with `finit_module(2)` and no parameters.
pub fn load_one(path: &Path) -> Result<(), Errno> {
    let file = File::open(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let params: &CStr = c"";
    finit_module(&file, params, ModuleInitFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/ethernet/amazon/ena/ena.ko:
kernel/drivers/other/unshipped.ko:
garbage line without colon
: empty path
";

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        let dep = parse_modules_dep(DEP);
        names.iter().map(|n| PathBuf::from("/m").join(&dep[&module_name(n)].path)).collect()
    }

    fn pos(plan: &LoadPlan, n: &str) -> usize {
        plan.order.iter().position(|(m, _)| m == n).unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(module_name("kernel/drivers/char/hw_random/virtio-rng.ko"), "virtio_rng");
        assert_eq!(module_name("ena.ko.xz"), "ena");
        assert_eq!(module_name("virtio_net.ko"), "virtio_net");
    }

    #[test]
    fn parse_dep() {
        let dep = parse_modules_dep(DEP);
        assert_eq!(dep.len(), 11);
        assert_eq!(dep["virtio_net"].deps, vec!["net_failover", "failover"]);
        assert_eq!(dep["virtio_rng"].path, "kernel/drivers/char/hw_random/virtio-rng.ko");
        assert!(dep["failover"].deps.is_empty());
    }

    #[test]
    fn topological_order() {
        let dep = parse_modules_dep(DEP);
        let present = paths(&[
            "ena",
            "virtio_net",
            "virtio-rng",
            "failover",
            "net_failover",
            "virtio_pci",
            "virtio",
            "virtio_ring",
            "virtio_pci_legacy_dev",
            "virtio_pci_modern_dev",
        ]);
        let plan = plan(&present, Some(&dep)).unwrap();
        assert_eq!(plan.order.len(), 10);
        assert!(plan.missing.is_empty());
        for (m, deps) in dep.iter() {
            if !plan.order.iter().any(|(n, _)| n == m) {
                continue;
            }
            for d in &deps.deps {
                assert!(pos(&plan, d) < pos(&plan, m), "{d} before {m}");
            }
        }
        // Ties follow the built-in order.
        assert_eq!(plan.order[0].0, "virtio_ring");
        assert!(pos(&plan, "virtio_net") < pos(&plan, "ena"));
    }

    #[test]
    fn missing_dependency_is_reported() {
        let dep = parse_modules_dep(DEP);
        let present = paths(&["virtio_net", "failover"]);
        let plan = plan(&present, Some(&dep)).unwrap();
        assert_eq!(plan.missing, vec!["net_failover"]);
        assert_eq!(plan.order.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["failover", "virtio_net"]);
    }

    #[test]
    fn cycle_is_detected() {
        let dep = parse_modules_dep("a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\nd.ko:\n");
        let present: Vec<PathBuf> = ["a.ko", "b.ko", "c.ko", "d.ko"].iter().map(PathBuf::from).collect();
        match plan(&present, Some(&dep)) {
            Err(InitError::Modules(msg)) => {
                assert!(msg.contains("cycle"), "{msg}");
                assert!(msg.contains("a -> b -> c -> a"), "{msg}");
            }
            other => panic!("expected a cycle error, got {other:?}"),
        }
        let selfloop = parse_modules_dep("a.ko: a.ko\n");
        assert!(plan(&[PathBuf::from("a.ko")], Some(&selfloop)).is_err());
    }

    #[test]
    fn builtin_order_without_dep() {
        let present: Vec<PathBuf> =
            ["zzz.ko", "ena.ko", "virtio-rng.ko", "virtio.ko", "virtio_ring.ko", "virtio_net.ko"]
                .iter()
                .map(|n| PathBuf::from("/lib/modules").join(n))
                .collect();
        let plan = plan(&present, None).unwrap();
        let names: Vec<_> = plan.order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["virtio_ring", "virtio", "virtio_net", "virtio_rng", "ena", "zzz"]);
        assert!(plan.missing.contains(&"virtio_pci".to_string()));
    }

    #[test]
    fn find_and_release_dir() {
        let tmp = std::env::temp_dir().join(format!("vssm-init-mod-{}", std::process::id()));
        let sub = tmp.join("kernel/drivers");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("a.ko"), b"").unwrap();
        std::fs::write(sub.join("b.ko.xz"), b"").unwrap();
        std::fs::write(tmp.join("modules.dep"), b"kernel/drivers/a.ko:\n").unwrap();
        assert_eq!(release_dir(&tmp), tmp);
        let (found, compressed) = find_modules(&tmp).unwrap();
        assert_eq!(found, vec![sub.join("a.ko")]);
        assert_eq!(compressed, vec![sub.join("b.ko.xz")]);
        // A module file that is not a valid module fails to load, never panics.
        assert!(load_one(&tmp.join("nonexistent.ko")).is_err());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
