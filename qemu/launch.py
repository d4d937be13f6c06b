#!/usr/bin/env python3
"""Boots a local VSSM cluster from the appliance image under qemu.

Each VM: the Debian cloud kernel + build/image/initramfs.cpio.gz (vssm as
/init), or the UKI under OVMF; KVM when a probe boot of the image's kernel
reaches /init under it, else TCG (probed once per run; VSSM_QEMU_ACCEL=kvm|tcg
overrides, see choose_accel); 256 MiB; serial console to DIR/vm-N.log; two NICs:

  1. user-mode (slirp) on 169.254.0.0/16: DHCP from slirp (router 169.254.0.2
     = the host's 127.0.0.1), the VM's own fake IMDS at 169.254.169.254:80
     (guestfwd to `fake_aws.py --imds-stdio ID`), and host forwards
     127.0.0.1:API -> 8080 and 127.0.0.1:HEALTH -> 8081;
  2. the cluster L2 segment: `-netdev socket,mcast=GROUP:PORT` (one group:port
     per cluster), addresses 10.77.0.(10+N)/24 from qemu/mcast_dhcp.py.

fake_aws.py (state in DIR/aws) lists the VMs as instances of one Auto Scaling
group with privateIp = the cluster address; the user-data is the cluster's
config.json (cluster.awsEndpoints -> http://169.254.0.2:APIPORT/).

CLI:
  python3 qemu/launch.py up --nodes 3 --dir build/cluster [--bootstrap] [--foreground]
  python3 qemu/launch.py status --dir build/cluster
  python3 qemu/launch.py down --dir build/cluster
API (tests): c = Cluster(dir); c.start(); c.start_vm(1); c.wait_health(1);
  c.bootstrap(1); c.client(1); c.kill_vm(1); c.down()
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
IMAGE = Path(os.environ.get("VSSM_IMAGE_DIR", REPO / "build" / "image"))
FAKE_AWS = HERE / "fake_aws" / "fake_aws.py"
DHCP = HERE / "mcast_dhcp.py"
OVMF = Path("/usr/share/ovmf/OVMF.fd")
QEMU = os.environ.get("VSSM_QEMU", "qemu-system-x86_64")
CMDLINE = "console=ttyS0 panic=-1 quiet"
API_PORT, HEALTH_PORT = 8080, 8081
SCRYPT_LOG_N = 10


def _load_conftest():
    """The test harness package tests/vssmtest (Pki, ApiClient, scrypt_mcf,
    terminate), importable here without pytest's `pythonpath`."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import vssmtest
    return vssmtest


def log(msg: str):
    print(f"{time.strftime('%H:%M:%S')} launch: {msg}", file=sys.stderr, flush=True)


# The kernel logs this line just before it executes the initramfs' /init: the
# vCPU has run the whole kernel boot (decompression, timers, initramfs unpack).
PROBE_LINE = "Run /init as init process"
PROBE_TIMEOUT = float(os.environ.get("VSSM_QEMU_PROBE_TIMEOUT", "10"))
# Tried in order under KVM: the host CPU model (fastest), then qemu's default
# model (some nested hosts refuse -cpu host's MSRs but run the default).
KVM_CPUS: tuple[tuple[str, ...], ...] = (("-cpu", "host"), ())


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator for every VM of this run, the qemu CPU arguments that
    go with it, and why it was chosen (printed in the e2e report)."""
    accel: str
    cpu_args: tuple[str, ...]
    reason: str

    def label(self) -> str:
        """E.g. `kvm -cpu host`, `tcg`."""
        return " ".join((self.accel, *self.cpu_args))


def probe_boot(qemu: str, accel_args: list[str], kernel: Path, initrd: Path, timeout: float) -> tuple[bool, str]:
    """Boots `kernel` + `initrd` once and waits up to `timeout` s for PROBE_LINE
    on the serial console; the VM is killed either way. Returns (seen, detail)."""
    with tempfile.TemporaryDirectory(prefix="vssm-accel-") as tmp:
        serial, out = Path(tmp) / "serial.log", Path(tmp) / "qemu.log"
        cmd = [qemu, *accel_args, "-m", "256", "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
               "-serial", f"file:{serial}", "-kernel", str(kernel), "-initrd", str(initrd),
               "-append", "console=ttyS0 panic=-1"]
        t0 = time.monotonic()
        try:
            with open(out, "wb") as o:
                p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as e:
            return False, f"cannot run {qemu}: {e.strerror}"
        try:
            while True:
                elapsed = time.monotonic() - t0
                text = serial.read_text(errors="replace") if serial.exists() else ""
                if PROBE_LINE in text:
                    return True, f"kernel reached /init in {elapsed:.1f}s"
                if p.poll() is not None:
                    tail = out.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                    return False, f"qemu exited with {p.returncode} after {elapsed:.1f}s ({tail[0][:160]})"
                if elapsed > timeout:
                    state = "nothing" if not text else f"{len(text)} bytes but not {PROBE_LINE!r}"
                    return False, f"serial console showed {state} within {timeout:g}s"
                time.sleep(0.1)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()


def choose_accel(qemu: str = QEMU, kernel: Path | None = None, initrd: Path | None = None,
                 kvm_device: str = "/dev/kvm", timeout: float = PROBE_TIMEOUT,
                 env: dict | None = None) -> AccelChoice:
    """KVM if a real Linux boot of the image gets to /init under it, else TCG.

    /dev/kvm can open, and even run a tiny firmware, on hosts whose vCPUs
    cannot run Linux (nested virtualisation: qemu aborts setting MSRs with
    `-cpu host`, or the guest hangs with an empty console). So the probe
    boots the image's own kernel and initramfs, once per CPU model in
    KVM_CPUS. VSSM_QEMU_ACCEL=kvm|tcg skips the probe."""
    env = os.environ if env is None else env
    kernel = kernel or IMAGE / "vmlinuz"
    initrd = initrd or IMAGE / "initramfs.cpio.gz"
    forced = env.get("VSSM_QEMU_ACCEL", "")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise ValueError(f"VSSM_QEMU_ACCEL={forced!r}: want kvm or tcg")
        return AccelChoice(forced, KVM_CPUS[0] if forced == "kvm" else (), f"VSSM_QEMU_ACCEL={forced}")
    try:
        os.close(os.open(kvm_device, os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        return AccelChoice("tcg", (), f"{kvm_device}: {e.strerror}")
    failures = []
    for cpu in KVM_CPUS:
        ok, detail = probe_boot(qemu, ["-accel", "kvm", *cpu], kernel, initrd, timeout)
        label = " ".join(cpu) or "default CPU"
        if ok:
            return AccelChoice("kvm", cpu, f"KVM probe ({label}): {detail}" +
                               "".join(f"; {f}" for f in failures))
        failures.append(f"KVM probe ({label}): {detail}")
    return AccelChoice("tcg", (), "; ".join(failures))


_ACCEL: AccelChoice | None = None


def accel_choice() -> AccelChoice:
    """choose_accel() for the image, probed once per process and then reused
    by every cluster and VM."""
    global _ACCEL
    if _ACCEL is None:
        _ACCEL = choose_accel()
        log(f"accelerator: {_ACCEL.label()} ({_ACCEL.reason})")
    return _ACCEL


def kvm_works() -> bool:
    """True if VMs of this run use KVM (see accel_choice)."""
    return accel_choice().accel == "kvm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout=1.0):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None


def pid_alive(pid: int, must_contain: str | None = None) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
        return False
    return must_contain is None or must_contain in cmd


def stop_pid(pid: int, must_contain: str, timeout=5.0):
    """SIGTERM then SIGKILL one process we started (checked by its command line)."""
    if not pid_alive(pid, must_contain):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid, must_contain):
            time.sleep(0.05)
        if pid_alive(pid, must_contain):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Vm:
    def __init__(self, n: int, cluster: "Cluster", uki: bool = False):
        self.n, self.cluster, self.uki = n, cluster, uki
        self.mac = f"52:54:00:77:{cluster.tag & 0xFF:02x}:{n:02x}"
        self.ip = f"10.77.0.{10 + n}"
        self.instance_id = "i-" + format((cluster.tag << 16) | n, "017x")
        self.api_port = free_port()
        self.health_port = free_port()
        self.log_path = cluster.dir / f"vm-{n}.log"
        self.qmp_path = cluster.dir / f"vm-{n}.qmp"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.started_at: float | None = None

    def qemu_cmd(self) -> list[str]:
        c = self.cluster
        imds_cmd = (f"{sys.executable} {FAKE_AWS} --imds-stdio {self.instance_id} --state {c.aws_dir}")
        user = ("user,id=u,net=169.254.0.0/16,host=169.254.0.2,dhcpstart=169.254.0.15,"
                f"hostname=vssm-{self.n},"
                f"hostfwd=tcp:127.0.0.1:{self.api_port}-:{API_PORT},"
                f"hostfwd=tcp:127.0.0.1:{self.health_port}-:{HEALTH_PORT},"
                f"guestfwd=tcp:169.254.169.254:80-cmd:{imds_cmd}")
        cmd = [QEMU, "-name", f"vssm-{c.tag:x}-{self.n}", "-accel", c.accel, "-m", str(c.memory),
               "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
               "-serial", f"file:{self.log_path}",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
               "-device", "virtio-rng-pci",
               "-netdev", user, "-device", "virtio-net-pci,netdev=u,romfile=",
               "-netdev", f"socket,id=c,mcast={c.mcast},localaddr=127.0.0.1",
               "-device", f"virtio-net-pci,netdev=c,mac={self.mac},romfile="]
        cmd += list(c.cpu_args)
        if self.uki:
            # UEFI: OVMF boots EFI/BOOT/BOOTX64.EFI (the UKI) from the ESP of the
            # real disk image (snapshot=on: never written), or from a vvfat ESP
            # made of the bare UKI when the disk image was not built.
            if (IMAGE / "vssm.raw").is_file():
                drive = f"file={IMAGE / 'vssm.raw'},format=raw,if=virtio,snapshot=on"
            else:
                esp = c.dir / f"esp-{self.n}"
                boot = esp / "EFI" / "BOOT"
                boot.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(IMAGE / "vssm.efi", boot / "BOOTX64.EFI")
                drive = f"file=fat:{esp},format=raw,if=virtio,readonly=on"
            cmd += ["-bios", str(OVMF), "-drive", drive]
        else:
            cmd += ["-kernel", str(IMAGE / "vmlinuz"), "-initrd", str(IMAGE / "initramfs.cpio.gz"),
                    "-append", CMDLINE]
        return cmd

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and pid_alive(self.pid, "qemu-system")

    def serial(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def qmp(self, command: str, timeout=5.0) -> dict:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(str(self.qmp_path))
        f = s.makefile("rwb")
        f.readline()  # greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}).encode() + b"\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    break
        s.close()
        return r

    def to_json(self) -> dict:
        return {"n": self.n, "pid": self.pid, "ip": self.ip, "mac": self.mac, "instanceId": self.instance_id,
                "apiPort": self.api_port, "healthPort": self.health_port, "log": str(self.log_path),
                "uki": self.uki}


class Cluster:
    def __init__(self, directory: Path | str, mcast: str | None = None, memory: int = 256,
                 accel: str | None = None, sync_interval: float = 2, attestation: str = "basic"):
        self.dir = Path(directory).resolve()
        self.aws_dir = self.dir / "aws"
        self.tag = random.randrange(1, 0xFFFF)
        self.mcast = mcast or f"230.0.{random.randrange(1, 255)}.{random.randrange(1, 255)}:{random.randrange(20000, 60000)}"
        self.memory = memory
        # Explicit accel: no probe (KVM then with -cpu host); else start() asks accel_choice().
        self.accel = accel
        self.cpu_args: tuple[str, ...] = KVM_CPUS[0] if accel == "kvm" else ()
        self.accel_reason = "set by the caller" if accel else None
        self.sync_interval = sync_interval
        self.attestation = attestation
        self.vms: dict[int, Vm] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.ct = _load_conftest()
        self.password = "vssm e2e " + os.urandom(6).hex()
        self.pki = None
        self.control_port = self.aws_api_port = None
        self.config: dict | None = None
        self._down = False

    def accel_label(self) -> str:
        """The accelerator, its CPU arguments and why, e.g. `tcg (KVM probe ...)`."""
        return f"{' '.join((self.accel or '?', *self.cpu_args))} ({self.accel_reason})"

    # -- lifecycle --------------------------------------------------------
    def start(self):
        for f in ("vmlinuz", "initramfs.cpio.gz"):
            if not (IMAGE / f).is_file():
                raise RuntimeError(f"{IMAGE / f} missing: run scripts/build-image.sh")
        if self.accel is None:
            choice = accel_choice()
            self.accel, self.cpu_args, self.accel_reason = choice.accel, choice.cpu_args, choice.reason
        self.dir.mkdir(parents=True, exist_ok=True)
        self.aws_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.down)
        log(f"cluster in {self.dir}: accel {self.accel_label()}, segment mcast={self.mcast}")
        self._start_fake_aws()
        self._start_dhcp()
        self.pki = self.ct.Pki(self.dir / "pki")
        self.config = self._make_config()
        (self.dir / "config.json").write_text(json.dumps(self.config, indent=2))
        self.save()
        return self

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        out = open(self.dir / f"{name}.log", "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        self.procs[name] = p
        return p

    def _start_fake_aws(self):
        ports = self.aws_dir / "ports.json"
        ports.unlink(missing_ok=True)
        p = self._spawn("fake_aws", [sys.executable, str(FAKE_AWS), "--state", str(self.aws_dir),
                                     "--control-port", "0", "--api-port", "0", "--reset"])
        deadline = time.monotonic() + 20
        while not ports.exists():
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake_aws did not start: {(self.dir / 'fake_aws.log').read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.05)
        j = json.loads(ports.read_text())
        self.control_port, self.aws_api_port = j["controlPort"], j["apiPort"]
        while self.aws("GET", "/health")[0] != 200:
            time.sleep(0.05)

    def _start_dhcp(self):
        (self.dir / "leases.json").write_text("{}")
        self._spawn("dhcp", [sys.executable, str(DHCP), "--mcast", self.mcast,
                             "--leases", str(self.dir / "leases.json")])

    def aws(self, method: str, path: str, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=30)
        try:
            c.request(method, path, body=None if body is None else json.dumps(body).encode(),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        finally:
            c.close()

    def _password_hash(self) -> str:
        binary = IMAGE / "vssm"
        if binary.is_file():
            r = subprocess.run([str(binary), "hash-password", "--log-n", str(SCRYPT_LOG_N)],
                               input=self.password + "\n", capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.startswith("$s0$"):
                return r.stdout.strip()
            log(f"vssm hash-password failed ({r.stderr.strip()[:200]}); hashing in Python")
        return self.ct.scrypt_mcf(self.password, SCRYPT_LOG_N)

    def _make_config(self) -> dict:
        st, ca = self.aws("GET", "/ca")
        ep = f"http://169.254.0.2:{self.aws_api_port}/"
        cluster = {
            "discovery": "aws",
            "attestation": self.attestation,
            "awsEndpoints": {"autoscaling": ep, "ec2": ep, "sts": ep},
            "attestationCaCertificates": [ca["der"]],
            "syncIntervalSeconds": self.sync_interval,
        }
        # healthDetails: the e2e test reads convergence and memory from
        # /REST/v1/cluster/status.
        return self.pki.config("0.0.0.0", self._password_hash(), cluster=cluster, healthDetails=True)

    def start_vm(self, n: int, uki: bool = False) -> Vm:
        if n in self.vms and self.vms[n].alive():
            raise RuntimeError(f"VM {n} is running")
        vm = Vm(n, self, uki=uki)
        leases = json.loads((self.dir / "leases.json").read_text())
        leases[vm.mac] = vm.ip
        tmp = self.dir / "leases.json.tmp"
        tmp.write_text(json.dumps(leases))
        os.replace(tmp, self.dir / "leases.json")
        self.aws("DELETE", f"/instances/{vm.instance_id}")
        st, inst = self.aws("POST", "/instances", {
            "instanceId": vm.instance_id, "privateIp": vm.ip, "imds": False,
            "userData": json.dumps(self.config)})
        if st != 200 and st != 201:
            raise RuntimeError(f"fake_aws POST /instances: {st} {inst}")
        vm.log_path.unlink(missing_ok=True)
        vm.qmp_path.unlink(missing_ok=True)
        cmd = vm.qemu_cmd()
        (self.dir / f"vm-{n}.cmd").write_text(" ".join(cmd) + "\n")
        out = open(self.dir / f"vm-{n}.qemu.log", "ab")
        vm.started_at = time.monotonic()
        vm.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        out.close()
        vm.pid = vm.proc.pid
        self.vms[n] = vm
        self.save()
        log(f"VM {n} ({'UKI/OVMF' if uki else 'kernel+initramfs'}): pid {vm.pid}, {vm.ip}, "
            f"api 127.0.0.1:{vm.api_port}, health 127.0.0.1:{vm.health_port}, serial {vm.log_path}")
        return vm

    def kill_vm(self, n: int, deregister: bool = True):
        """Pulls the plug (SIGKILL qemu); by default also removes the instance
        from the fake Auto Scaling group, as AWS would on termination."""
        vm = self.vms[n]
        if vm.proc is not None and vm.proc.poll() is None:
            vm.proc.kill()
            vm.proc.wait(timeout=10)
        elif vm.pid and pid_alive(vm.pid, "qemu-system"):
            os.kill(vm.pid, signal.SIGKILL)
        if deregister:
            self.aws("DELETE", f"/instances/{vm.instance_id}")
        self.save()

    def power_button(self, n: int, timeout=30.0) -> float:
        """ACPI power button via QMP; returns seconds until qemu exited."""
        vm = self.vms[n]
        t0 = time.monotonic()
        vm.qmp("system_powerdown")
        vm.proc.wait(timeout=timeout)
        return time.monotonic() - t0

    def health(self, n: int, path="/REST/v1/healthcheck"):
        return http_get(self.vms[n].health_port, path)

    def status(self, n: int) -> dict | None:
        r = self.health(n, "/REST/v1/cluster/status")
        return json.loads(r[1]) if r and r[0] == 200 else None

    def wait_health(self, n: int, want: int | None = None, timeout=60.0) -> float:
        """Waits until VM n's health endpoint answers (with `want`, if given);
        returns seconds since qemu was started."""
        vm = self.vms[n]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not vm.alive():
                raise AssertionError(f"VM {n} exited (code {vm.proc.returncode if vm.proc else '?'});"
                                     f" serial:\n{vm.serial()[-4000:]}")
            last = self.health(n)
            if last is not None and (want is None or last[0] == want):
                return time.monotonic() - vm.started_at
            time.sleep(0.1)
        raise AssertionError(f"VM {n}: no health {want or 'answer'} within {timeout}s (last {last});"
                             f" serial:\n{vm.serial()[-4000:]}")

    # -- API clients --------------------------------------------------------
    def pre_client(self, n: int):
        return self.ct.ApiClient("127.0.0.1", port=self.vms[n].api_port, ca=None, cert=None,
                                 password=self.password)

    def client(self, n: int, cn="vssm-e2e-client"):
        return self.ct.ApiClient("127.0.0.1", port=self.vms[n].api_port, ca=self.pki.rpc_crt,
                                 cert=self.pki.client_cert(cn), sni="VSSM", password=self.password)

    def bootstrap(self, n: int):
        c = self.pre_client(n)
        try:
            return c.post("/REST/v1/admin/bootstrap",
                          {"rpcPrivateKey": base64.b64encode(self.pki.rpc_pkcs8_der).decode()})
        finally:
            c.close()

    # -- bookkeeping -----------------------------------------------------------
    def save(self):
        if self._down:
            return
        j = {"dir": str(self.dir), "mcast": self.mcast, "accel": self.accel, "cpuArgs": list(self.cpu_args),
             "accelReason": self.accel_reason, "tag": self.tag,
             "fakeAws": {"pid": self.procs["fake_aws"].pid, "controlPort": self.control_port,
                         "apiPort": self.aws_api_port},
             "dhcp": {"pid": self.procs["dhcp"].pid},
             "password": self.password,
             "pki": {"rpcCertificate": str(self.pki.rpc_crt) if self.pki else None},
             "vms": {str(n): vm.to_json() for n, vm in self.vms.items()}}
        (self.dir / "cluster.json").write_text(json.dumps(j, indent=2))

    def down(self):
        if self._down:
            return
        self._down = True
        for vm in self.vms.values():
            if vm.proc is not None and vm.proc.poll() is None:
                vm.proc.kill()
                vm.proc.wait(timeout=10)
        for p in self.procs.values():
            self.ct.terminate(p)
        (self.dir / "cluster.json").unlink(missing_ok=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.down()


def down_from_file(directory: Path) -> int:
    f = directory / "cluster.json"
    if not f.exists():
        print(f"no cluster in {directory}")
        return 0
    j = json.loads(f.read_text())
    for vm in j["vms"].values():
        if vm["pid"]:
            stop_pid(vm["pid"], "qemu-system")
    stop_pid(j["dhcp"]["pid"], "mcast_dhcp.py")
    stop_pid(j["fakeAws"]["pid"], "fake_aws.py")
    f.unlink()
    print(f"cluster in {directory} stopped")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="VSSM qemu cluster")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start fake AWS, DHCP and N VMs")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--bootstrap", action="store_true", help="bootstrap VM 1 with the generated RPC key")
    up.add_argument("--foreground", action="store_true", help="stay up until Ctrl-C, then tear down")
    up.add_argument("--uki", action="store_true", help="boot the UKI under OVMF instead of -kernel")
    for p in (up, sub.add_parser("down"), sub.add_parser("status")):
        p.add_argument("--dir", type=Path, default=REPO / "build" / "cluster")
    a = ap.parse_args(argv)
    d = a.dir.resolve()
    if a.cmd == "down":
        return down_from_file(d)
    if a.cmd == "status":
        f = d / "cluster.json"
        if not f.exists():
            print(f"no cluster in {d}")
            return 1
        j = json.loads(f.read_text())
        for n, vm in j["vms"].items():
            h = http_get(vm["healthPort"], "/REST/v1/healthcheck")
            st = "down" if not pid_alive(vm["pid"], "qemu-system") else (h[0] if h else "no answer")
            print(f"VM {n}: {vm['ip']} api 127.0.0.1:{vm['apiPort']} health 127.0.0.1:{vm['healthPort']} -> {st}")
        return 0
    if (d / "cluster.json").exists():
        down_from_file(d)
    c = Cluster(d)
    if a.foreground:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        c.start()
        t0 = time.monotonic()
        for n in range(1, a.nodes + 1):
            c.start_vm(n, uki=a.uki)
        for n in range(1, a.nodes + 1):
            t = c.wait_health(n, timeout=180 if a.uki else 60)
            log(f"VM {n} answers health after {t:.1f}s")
        if a.bootstrap:
            r = c.bootstrap(1)
            if r.status != 200:
                raise RuntimeError(f"bootstrap: {r!r}")
            for n in range(1, a.nodes + 1):
                c.wait_health(n, want=200, timeout=120)
            log(f"all {a.nodes} VMs healthy (200) {time.monotonic() - t0:.1f}s after start")
        cert, key = c.pki.client_cert("vssm-e2e-client")
        print(json.dumps({"dir": str(d), "password": c.password, "rpcCertificate": str(c.pki.rpc_crt),
                          "rpcKeyPkcs8Der": str(c.pki.dir / "rpc.pk8.der"),
                          "clientCertificate": str(cert), "clientKey": str(key),
                          "vms": {n: {"api": f"127.0.0.1:{vm.api_port}", "health": f"127.0.0.1:{vm.health_port}",
                                      "clusterIp": vm.ip, "serial": str(vm.log_path)}
                                  for n, vm in c.vms.items()}}, indent=2))
        if a.foreground:
            print("Ctrl-C to stop", file=sys.stderr)
            signal.pause()
        else:
            # Leave everything running; `down` stops it by the pids in cluster.json.
            atexit.unregister(c.down)
            for vm in c.vms.values():
                vm.proc = None
            print(f"stop with: python3 {Path(__file__).relative_to(REPO)} down --dir {d}", file=sys.stderr)
        return 0
    except (KeyboardInterrupt, SystemExit):
        return 0
    except BaseException:
        c.down()
        raise
    finally:
        if a.foreground:
            c.down()


if __name__ == "__main__":
    sys.exit(main())
