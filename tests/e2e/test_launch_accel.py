"""qemu/launch.py's accelerator decision, against a fake qemu (no VM, a few
seconds): KVM only when the image's kernel really boots under it.

The fake qemu is told per accelerator/CPU model what to do ("boot": print the
kernel's line before /init on the serial file and keep running; "silent": run
and print nothing, as a KVM that cannot run Linux; "abort": exit 134 at once,
as qemu does when the host refuses -cpu host's MSRs) and logs each call.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "qemu"))
import launch  # noqa: E402

CHOOSE = launch.choose_accel  # the real one, also when a test patches launch.choose_accel

FAKE_QEMU = r'''#!PYTHON
import json, os, sys, time
args = sys.argv[1:]
accel = args[args.index("-accel") + 1]
cpu = args[args.index("-cpu") + 1] if "-cpu" in args else "default"
serial = args[args.index("-serial") + 1].removeprefix("file:")
key = f"{accel}:{cpu}" if accel == "kvm" else accel
mode = json.loads(os.environ["FAKE_QEMU_MODES"]).get(key, "silent")
with open(os.environ["FAKE_QEMU_CALLS"], "a") as f:
    f.write(json.dumps({"key": key, "pid": os.getpid(), "mode": mode}) + "\n")
open(serial, "w").close()
if mode == "abort":
    print("qemu: kvm_buf_set_msrs: Assertion failed.", file=sys.stderr)
    sys.exit(134)
if mode == "boot":
    with open(serial, "a") as s:
        s.write("[    0.000000] Linux version 6.1.0\n[    0.9] Run /init as init process\n")
time.sleep(60)
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake qemu and a /dev/kvm stand-in that opens; returns a helper that
    sets the per-key modes and reads back the calls."""
    qemu = tmp_path / "qemu-system-x86_64"
    qemu.write_text(FAKE_QEMU.replace("PYTHON", sys.executable))
    qemu.chmod(qemu.stat().st_mode | stat.S_IXUSR)
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_QEMU_CALLS", str(calls))
    monkeypatch.delenv("VSSM_QEMU_ACCEL", raising=False)

    class Fake:
        def __init__(self):
            self.qemu, self.kvm = str(qemu), str(kvm)

        def modes(self, **m):
            monkeypatch.setenv("FAKE_QEMU_MODES", json.dumps({k.replace("_", ":"): v for k, v in m.items()}))

        def calls(self) -> list[dict]:
            return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

        def choose(self, timeout=1.5, **kw):
            kw.setdefault("kvm_device", self.kvm)
            return CHOOSE(qemu=self.qemu, kernel=tmp_path / "vmlinuz",
                                       initrd=tmp_path / "initrd", timeout=timeout, **kw)

    return Fake()


def assert_all_stopped(calls: list[dict]):
    for c in calls:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{c['pid']}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{c['pid']}").exists(), f"probe VM {c} left running"


def test_working_kvm_uses_host_cpu(fake):
    fake.modes(kvm_host="boot", kvm_default="boot", tcg="boot")
    choice = fake.choose()
    assert (choice.accel, choice.cpu_args) == ("kvm", ("-cpu", "host"))
    assert "reached /init" in choice.reason
    assert [c["key"] for c in fake.calls()] == ["kvm:host"]
    assert_all_stopped(fake.calls())


def test_kvm_that_boots_nothing_falls_back_to_tcg(fake):
    # The failure seen on nested hosts: -cpu host aborts, the default CPU
    # passes a firmware probe but Linux never prints a line.
    fake.modes(kvm_host="abort", kvm_default="silent", tcg="boot")
    t0 = time.monotonic()
    choice = fake.choose(timeout=1.5)
    took = time.monotonic() - t0
    assert (choice.accel, choice.cpu_args) == ("tcg", ())
    assert "exited with 134" in choice.reason
    assert "showed nothing within 1.5s" in choice.reason
    assert [c["key"] for c in fake.calls()] == ["kvm:host", "kvm:default"]
    assert took < 6, f"the probe must be bounded by its timeout, took {took:.1f}s"
    assert_all_stopped(fake.calls())


def test_kvm_with_default_cpu_when_host_cpu_is_refused(fake):
    fake.modes(kvm_host="abort", kvm_default="boot")
    choice = fake.choose()
    assert (choice.accel, choice.cpu_args) == ("kvm", ())
    assert "default CPU" in choice.reason and "exited with 134" in choice.reason


def test_no_kvm_device_means_tcg_without_probe(fake, tmp_path):
    fake.modes(kvm_host="boot", kvm_default="boot")
    choice = fake.choose(kvm_device=str(tmp_path / "no-such-kvm"))
    assert (choice.accel, choice.cpu_args) == ("tcg", ())
    assert "no-such-kvm" in choice.reason
    assert fake.calls() == []


def test_missing_qemu_means_tcg(fake, tmp_path):
    choice = launch.choose_accel(qemu=str(tmp_path / "no-qemu"), kernel=tmp_path / "k", initrd=tmp_path / "i",
                                 kvm_device=fake.kvm, timeout=1)
    assert choice.accel == "tcg" and "cannot run" in choice.reason


@pytest.mark.parametrize("forced", ["kvm", "tcg"])
def test_env_override_skips_the_probe(fake, forced):
    fake.modes(kvm_host="silent")
    choice = fake.choose(env={"VSSM_QEMU_ACCEL": forced})
    assert choice.accel == forced and "VSSM_QEMU_ACCEL" in choice.reason
    assert fake.calls() == []
    with pytest.raises(ValueError):
        fake.choose(env={"VSSM_QEMU_ACCEL": "hvf"})


def test_probed_once_per_run(fake, monkeypatch, tmp_path):
    fake.modes(kvm_host="boot")
    monkeypatch.setattr(launch, "_ACCEL", None)
    monkeypatch.setattr(launch, "choose_accel", lambda: fake.choose())
    monkeypatch.setattr(launch, "log", lambda msg: None)  # no fake "accelerator:" line in the e2e log
    first = launch.accel_choice()
    assert all(launch.accel_choice() is first for _ in range(3)) and launch.kvm_works()
    assert first.accel == "kvm" and first.label() == "kvm -cpu host"
    assert len(fake.calls()) == 1
    # An explicit accelerator needs no probe.
    explicit = launch.Cluster(tmp_path / "x", accel="tcg")
    assert explicit.cpu_args == () and explicit.accel_label() == "tcg (set by the caller)"


def test_vm_command_carries_the_chosen_cpu(tmp_path):
    c = launch.Cluster(tmp_path / "c", accel="kvm")
    c.cpu_args = ()
    c.accel = "kvm"
    cmd = launch.Vm(1, c).qemu_cmd()
    assert cmd[cmd.index("-accel") + 1] == "kvm" and "-cpu" not in cmd
    c.cpu_args = ("-cpu", "host")
    cmd = launch.Vm(2, c).qemu_cmd()
    assert cmd[cmd.index("-cpu") + 1] == "host"


@pytest.mark.skipif(not os.environ.get("VSSM_ACCEL_REAL_PROBE"), reason="set VSSM_ACCEL_REAL_PROBE=1")
def test_real_probe_here():
    """The real qemu and image on this host (prints the decision)."""
    choice = launch.choose_accel(env={})
    print(f"\nthis host: {choice}")
    if choice.accel == "kvm":
        # KVM only after a probe VM of this image reached /init.
        assert choice.reason.startswith("KVM probe"), choice
    else:
        # TCG says why: no usable /dev/kvm, or each probe's failure.
        assert choice.accel == "tcg" and choice.reason and not choice.cpu_args, choice
        assert "/dev/kvm" in choice.reason or "KVM probe" in choice.reason, choice
