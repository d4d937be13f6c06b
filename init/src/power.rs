//! Power: clean power-off, fatal-error handling and the ACPI power button.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::{reboot, set_cad_enabled, RebootMode};

use crate::is_pid1;

static POWERING_OFF: AtomicBool = AtomicBool::new(false);

/// Powers off cleanly: logs `reason`, `sync`s, then `reboot(RB_POWER_OFF)`.
/// Never returns. When this process is not PID 1 (tests, dev mode) it exits
/// with status 1 instead. If the kernel refuses, it tries `RB_HALT_SYSTEM`
/// and then sleeps forever: PID 1 must not exit, panic or exec anything.
pub fn power_off(reason: &str) -> ! {
    log!("powering off: {reason}");
    if !is_pid1() {
        std::process::exit(1);
    }
    if POWERING_OFF.swap(true, Ordering::SeqCst) {
        // Another thread (or a panic inside this function) got here first;
        // it is powering off. Do not run the sequence twice.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    nix::unistd::sync();
    match reboot(RebootMode::RB_POWER_OFF) {
        Err(e) => log!("reboot(RB_POWER_OFF) failed: {e}"),
        Ok(never) => match never {},
    }
    let _ = reboot(RebootMode::RB_HALT_SYSTEM);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Installs a panic hook that, in PID 1, logs the panic (through the default
/// hook, to the console) and powers off instead of letting the process die
/// and the kernel panic with "Attempted to kill init". Outside PID 1 the
/// default behaviour is kept. Works with `panic = "abort"` too: the hook
/// runs before the abort.
pub fn install_fatal_handlers() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        if is_pid1() {
            power_off("panic in PID 1");
        }
    }));
}

/// `EV_KEY` from `linux/input-event-codes.h`.
pub const EV_KEY: u16 = 1;
/// `KEY_POWER` from `linux/input-event-codes.h`.
pub const KEY_POWER: u16 = 116;
/// Size of `struct input_event` on 64-bit Linux.
pub const INPUT_EVENT_SIZE: usize = 24;
/// How often the watcher looks for new input devices.
const RESCAN: Duration = Duration::from_secs(5);

/// Decodes one `struct input_event` (64-bit layout: 16 bytes of timeval,
/// then type u16, code u16, value i32) and tells whether it is a power-key
/// press.
pub fn is_power_press(ev: &[u8]) -> bool {
    if ev.len() < INPUT_EVENT_SIZE {
        return false;
    }
    let ty = u16::from_ne_bytes([ev[16], ev[17]]);
    let code = u16::from_ne_bytes([ev[18], ev[19]]);
    let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
    ty == EV_KEY && code == KEY_POWER && value == 1
}

/// The `/dev/input/event*` nodes whose device name contains "Power Button"
/// (the ACPI `button` driver's LNXPWRBN / PNP0C0C devices).
pub fn power_button_devices(sys_input: &Path, dev_input: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(sys_input) else {
        return out;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("event") {
            continue;
        }
        let dev_name = std::fs::read_to_string(entry.path().join("device/name")).unwrap_or_default();
        if dev_name.contains("Power Button") {
            out.push(dev_input.join(&*name));
        }
    }
    out.sort();
    out
}

/// Makes the two power signals of a VM reach PID 1:
///
/// * `reboot(RB_DISABLE_CAD)`, so Ctrl-Alt-Del sends `SIGINT` to PID 1
///   instead of rebooting at once. `SIGINT`/`SIGTERM` themselves are left to
///   the caller (e.g. `tokio::signal`): PID 1 only receives signals it has a
///   handler for;
/// * a thread reading the `/dev/input/event*` devices named "Power Button"
///   (qemu `system_powerdown`, EC2 stop) that calls `on_press` for every
///   `KEY_POWER` press. Devices that appear later (module loaded late) are
///   picked up by a periodic rescan. Needs the `button` and `evdev` drivers.
///
/// Fails only if the thread cannot be started (or, in PID 1, if Ctrl-Alt-Del
/// cannot be disabled).
pub fn watch_power_button(on_press: impl Fn() + Send + 'static) -> io::Result<()> {
    if is_pid1() {
        set_cad_enabled(false).map_err(io::Error::from)?;
    }
    std::thread::Builder::new()
        .name("power-button".into())
        .spawn(move || watch_loop(Path::new("/sys/class/input"), Path::new("/dev/input"), on_press))?;
    Ok(())
}

fn watch_loop(sys_input: &Path, dev_input: &Path, on_press: impl Fn()) {
    let mut open: Vec<(PathBuf, File)> = Vec::new();
    let mut announced_none = false;
    loop {
        for path in power_button_devices(sys_input, dev_input) {
            if open.iter().any(|(p, _)| *p == path) {
                continue;
            }
            match File::open(&path) {
                Ok(f) => {
                    log!("power button: watching {}", path.display());
                    open.push((path, f));
                }
                Err(e) => log!("power button: cannot open {}: {e}", path.display()),
            }
        }
        if open.is_empty() {
            if !announced_none {
                log!("power button: no device yet (needs the button and evdev drivers)");
                announced_none = true;
            }
            std::thread::sleep(RESCAN);
            continue;
        }
        let mut fds: Vec<PollFd<'_>> = open.iter().map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
        let timeout = PollTimeout::try_from(RESCAN.as_millis() as i32).unwrap_or(PollTimeout::NONE);
        let ready = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if ready == 0 {
            continue;
        }
        let revents: Vec<PollFlags> = fds.iter().map(|p| p.revents().unwrap_or(PollFlags::empty())).collect();
        drop(fds);
        let mut dead = Vec::new();
        for (i, ev) in revents.into_iter().enumerate() {
            if ev.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                dead.push(i);
                continue;
            }
            if !ev.contains(PollFlags::POLLIN) {
                continue;
            }
            let mut buf = [0u8; INPUT_EVENT_SIZE * 16];
            match open[i].1.read(&mut buf) {
                Ok(n) => {
                    if buf[..n].chunks_exact(INPUT_EVENT_SIZE).any(is_power_press) {
                        log!("power button pressed ({})", open[i].0.display());
                        on_press();
                    }
                }
                Err(_) => dead.push(i),
            }
        }
        for i in dead.into_iter().rev() {
            let (p, f) = open.remove(i);
            log!("power button: {} went away (fd {})", p.display(), f.as_raw_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ty: u16, code: u16, value: i32) -> [u8; INPUT_EVENT_SIZE] {
        let mut e = [0u8; INPUT_EVENT_SIZE];
        e[16..18].copy_from_slice(&ty.to_ne_bytes());
        e[18..20].copy_from_slice(&code.to_ne_bytes());
        e[20..24].copy_from_slice(&value.to_ne_bytes());
        e
    }

    #[test]
    fn power_press_decoding() {
        assert!(is_power_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_press(&event(EV_KEY, KEY_POWER, 0)));
        assert!(!is_power_press(&event(0, 0, 0)));
        assert!(!is_power_press(&[0u8; 10]));
    }

    #[test]
    fn finds_power_button_by_name() {
        let tmp = std::env::temp_dir().join(format!("vssm-init-input-{}", std::process::id()));
        for (ev, name) in [("event0", "AT Translated Set 2 keyboard\n"), ("event1", "Power Button\n")] {
            std::fs::create_dir_all(tmp.join(ev).join("device")).unwrap();
            std::fs::write(tmp.join(ev).join("device/name"), name).unwrap();
        }
        std::fs::create_dir_all(tmp.join("mouse0")).unwrap();
        let found = power_button_devices(&tmp, Path::new("/dev/input"));
        assert_eq!(found, vec![PathBuf::from("/dev/input/event1")]);
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn watcher_calls_back_on_press() {
        // A FIFO stands in for the event device.
        let tmp = std::env::temp_dir().join(format!("vssm-init-watch-{}", std::process::id()));
        let sys = tmp.join("sys");
        let dev = tmp.join("dev");
        std::fs::create_dir_all(sys.join("event3/device")).unwrap();
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(sys.join("event3/device/name"), "Power Button\n").unwrap();
        let fifo = dev.join("event3");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, d) = (sys.clone(), dev.clone());
        std::thread::spawn(move || {
            watch_loop(&s, &d, move || {
                let _ = tx.send(());
            })
        });
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        use std::io::Write;
        w.write_all(&event(EV_KEY, KEY_POWER, 0)).unwrap();
        w.write_all(&event(EV_KEY, KEY_POWER, 1)).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(w);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
