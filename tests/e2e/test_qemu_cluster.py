"""End to end: a VSSM cluster of appliance VMs under qemu (qemu/launch.py).

3 VMs boot from the image; VM 1 is bootstrapped through its forwarded 8080;
VMs 2 and 3 join by attestation through their own fake IMDS; a key generated
on VM 2 works on VM 3; VM 1 is killed; VM 4 boots, joins and holds every key;
VM 4 is stopped with the ACPI power button; the disk image boots once under
OVMF (UKI) to its health endpoint. Numbers go to build/e2e/measurements.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "qemu"))
import launch  # noqa: E402

pytestmark = pytest.mark.slow
OUT = REPO / "build" / "e2e"
KEY = "e2e-aes-key"
ALG = "AES/GCM/NoPadding"
BOOT_TIMEOUT = float(os.environ.get("VSSM_E2E_BOOT_TIMEOUT", "90"))


class Numbers:
    def __init__(self):
        self.data: dict = {}
        OUT.mkdir(parents=True, exist_ok=True)

    def __setitem__(self, key, value):
        self.data[key] = round(value, 2) if isinstance(value, float) else value
        print(f"MEASUREMENT {key} = {json.dumps(self.data[key])}", file=sys.stderr, flush=True)
        (OUT / "measurements.json").write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")


def wait_until(pred, timeout, desc, interval=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {desc}; last={last!r}")


def key_listed(client) -> bool:
    lk = client.listkeys()
    return any(k.get("name") == KEY for k in lk.get("symmetricKey", []))


def guest_rss_kib(c: launch.Cluster, n: int):
    """vssm's VmRSS if the node reports it on /REST/v1/cluster/status."""
    st = c.status(n) or {}
    for k in ("vmRssKib", "rssKib", "vmRssBytes", "rssBytes", "memoryRssBytes"):
        if k in st:
            v = int(st[k])
            return v // 1024 if k.endswith("Bytes") else v
    return None


def qemu_rss_kib(vm: launch.Vm):
    try:
        for line in Path(f"/proc/{vm.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None


@pytest.fixture(scope="module")
def numbers():
    return Numbers()


@pytest.fixture(scope="module")
def cluster():
    d = OUT / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}"
    c = launch.Cluster(d)
    c.start()
    yield c
    c.down()
    print(f"\ncluster logs (serial consoles, fake AWS, DHCP) in {d}", file=sys.stderr)


def test_cluster_lifecycle(cluster: launch.Cluster, numbers: Numbers, record_property):
    c = cluster
    t_start = time.monotonic()
    # Which accelerator and why, in the log (-s), the -rA report and junit-xml.
    print(f"\nACCELERATOR {c.accel_label()}", flush=True)
    record_property("accel", " ".join((c.accel, *c.cpu_args)))
    record_property("accel_reason", c.accel_reason)
    numbers["accel"] = c.accel
    numbers["accel_cpu_args"] = " ".join(c.cpu_args)
    numbers["accel_reason"] = c.accel_reason
    image = launch.IMAGE
    numbers["initramfs_bytes"] = (image / "initramfs.cpio.gz").stat().st_size
    numbers["uki_bytes"] = (image / "vssm.efi").stat().st_size
    numbers["vssm_bytes"] = (image / "vssm").stat().st_size

    # 1. three VMs, booted together
    for n in (1, 2, 3):
        c.start_vm(n)
    boot = {n: c.wait_health(n, timeout=BOOT_TIMEOUT) for n in (1, 2, 3)}
    numbers["qemu_start_to_health_s"] = {str(n): round(t, 2) for n, t in boot.items()}
    serial = c.vms[1].serial()
    assert "boot complete" in serial, serial[-3000:]
    assert "module loading disabled" in serial, serial[-3000:]
    assert "stays writable" not in serial, "the root file system must be remounted read-only"

    # 2. bootstrap VM 1 from the host with the RPC key (PKCS#8 DER)
    r = c.bootstrap(1)
    assert r.status == 200, f"bootstrap: {r!r}\n{c.vms[1].serial()[-3000:]}"
    t_boot = time.monotonic()
    c.wait_health(1, want=200, timeout=30)

    # 3. VMs 2 and 3 join by attestation (their own IMDS, the fake ASG)
    for n in (2, 3):
        c.wait_health(n, want=200, timeout=120)
    numbers["join_after_bootstrap_s"] = time.monotonic() - t_boot

    # 4. a key generated on VM 2 works on VM 3 (and back)
    api2, api3 = c.client(2), c.client(3)
    try:
        r = api2.generate(KEY, "SYMMETRIC", 32)
        assert r.status == 200, r
        t_key = time.monotonic()
        wait_until(lambda: key_listed(api3), 60, "the key to reach VM 3")
        numbers["key_sync_2_to_3_s"] = time.monotonic() - t_key
        ct = api3.out("symmetric/encrypt", keyName=KEY, algorithm=ALG, input=b"from VM 3")
        assert api2.out("symmetric/decrypt", keyName=KEY, algorithm=ALG, input=ct) == b"from VM 3"
    finally:
        api2.close()
        api3.close()

    rss = guest_rss_kib(c, 2)
    numbers["vssm_vmrss_kib"] = rss if rss is not None else "not exposed by the node"
    numbers["qemu_process_rss_kib"] = qemu_rss_kib(c.vms[2])

    # 5. VM 1 dies (and leaves the Auto Scaling group); VM 4 boots and joins
    c.kill_vm(1)
    c.start_vm(4)
    t4 = c.wait_health(4, timeout=BOOT_TIMEOUT)
    c.wait_health(4, want=200, timeout=120)
    numbers["new_vm_boot_to_health_s"] = t4
    numbers["new_vm_start_to_joined_s"] = time.monotonic() - c.vms[4].started_at
    api4 = c.client(4)
    try:
        wait_until(lambda: key_listed(api4), 60, "VM 4 to hold the key")
        ct = api4.out("symmetric/encrypt", keyName=KEY, algorithm=ALG, input=b"from VM 4")
    finally:
        api4.close()
    api3 = c.client(3)
    try:
        assert api3.out("symmetric/decrypt", keyName=KEY, algorithm=ALG, input=ct) == b"from VM 4"
    finally:
        api3.close()

    # 6. ACPI power button on VM 4: graceful stop, power off
    numbers["power_button_to_poweroff_s"] = c.power_button(4, timeout=60)
    assert c.vms[4].proc.returncode == 0, c.vms[4].serial()[-2000:]

    # 7. the disk image (GPT/ESP/UKI) under OVMF, to its health endpoint
    if not launch.OVMF.exists():
        pytest.fail(f"{launch.OVMF} missing (apt-get install ovmf)")
    c.start_vm(5, uki=True)
    numbers["uefi_uki_start_to_health_s"] = c.wait_health(5, timeout=BOOT_TIMEOUT * 2)
    c.kill_vm(5)

    numbers["e2e_cluster_test_s"] = time.monotonic() - t_start
