#!/usr/bin/env bash
# Builds the VSSM appliance boot artefacts without loop devices or root-only
# tools (runs here, in CI and on a developer box):
#
#   build/image/vssm               static musl binary (= /init)
#   build/image/vmlinuz            Debian cloud kernel (lz4), from the .deb
#   build/image/initramfs.cpio.gz  newc, root-owned, mtime 0: /init + /lib/modules
#   build/image/vssm.efi           UKI: systemd EFI stub + osrel + cmdline + kernel + initramfs
#   build/image/vssm.raw           GPT disk, one FAT32 ESP with EFI/BOOT/BOOTX64.EFI = the UKI
#                                  (sgdisk + mkfs.vfat --offset + mtools: no loop device)
#   build/image/manifest.json      versions, sizes, sha256
#
# Re-running reuses what is unchanged: cargo is incremental, the kernel .debs
# are kept in build/image/kernel/, and the initramfs/UKI are only reassembled
# when an input hash changes. Env: VSSM_REFRESH_KERNEL=1 re-downloads the kernel;
# VSSM_CMDLINE overrides the UKI command line; CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/build/image
TARGET=x86_64-unknown-linux-musl
BIN=${CARGO_TARGET_DIR:-$REPO/target}/$TARGET/release/vssm
STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
CMDLINE=${VSSM_CMDLINE:-console=ttyS0 panic=-1 quiet}
mkdir -p "$OUT"
log() { echo "build-image: $*" >&2; }

# --- host tools -------------------------------------------------------------
need=()
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -e /usr/share/ovmf/OVMF.fd ] || need+=(ovmf)
[ -e "$STUB" ] || need+=(systemd-boot-efi)
command -v objcopy >/dev/null || need+=(binutils)
command -v file >/dev/null || need+=(file)
command -v cpio >/dev/null || need+=(cpio)
command -v modinfo >/dev/null || need+=(kmod)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
command -v sgdisk >/dev/null || need+=(gdisk)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
command -v mcopy >/dev/null || need+=(mtools)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"

# --- vssm, static ----------------------------------------------------------
log "cargo build --release --target $TARGET -p vssm"
cargo build --release --target "$TARGET" -p vssm
desc=$(file -b "$BIN")
case "$desc" in
  *"dynamically linked"*) log "ERROR: $BIN is dynamically linked: $desc"; exit 1 ;;
  *"statically linked"*|*"static-pie linked"*) ;;
  *) log "ERROR: unexpected binary type: $desc"; exit 1 ;;
esac
install -m 0755 "$BIN" "$OUT/vssm.new" && mv -f "$OUT/vssm.new" "$OUT/vssm"
log "vssm: $(stat -c %s "$OUT/vssm") bytes ($desc)"

# --- kernel + modules from the Debian cloud kernel .deb ---------------------
KDIR=$OUT/kernel
mkdir -p "$KDIR"
if [ "${VSSM_REFRESH_KERNEL:-0}" = 1 ] || ! ls "$KDIR"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
  rm -rf "$KDIR" && mkdir -p "$KDIR"
  (cd "$KDIR" && apt-get download linux-image-cloud-amd64 2>/dev/null) || {
    apt-get update -q && (cd "$KDIR" && apt-get download linux-image-cloud-amd64); }
  meta=$(ls "$KDIR"/linux-image-cloud-amd64_*.deb)
  # Depends: linux-image-6.1.0-NN-cloud-amd64 (= ...)  [or the -unsigned variant]
  real=$(dpkg-deb -f "$meta" Depends | tr ',|' '\n\n' | sed 's/(.*//; s/ //g' \
         | grep -E '^linux-image-[0-9].*-cloud-amd64(-unsigned)?$' | head -n1)
  [ -n "$real" ] || { log "ERROR: no real kernel package in Depends of $meta"; exit 1; }
  log "kernel package: $real"
  (cd "$KDIR" && apt-get download "$real")
fi
kdeb=$(ls "$KDIR"/linux-image-[0-9]*-cloud-amd64*_*.deb | head -n1)
if [ ! -f "$KDIR/root/.from" ] || [ "$(cat "$KDIR/root/.from")" != "$(basename "$kdeb")" ]; then
  rm -rf "$KDIR/root" && mkdir -p "$KDIR/root"
  dpkg-deb -x "$kdeb" "$KDIR/root"
  basename "$kdeb" > "$KDIR/root/.from"
fi
KVER=$(ls "$KDIR/root/lib/modules" | head -n1)
MODROOT=$KDIR/root/lib/modules/$KVER
cp -f "$KDIR/root/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
CONFIG=$KDIR/root/boot/config-$KVER
log "kernel $KVER ($(stat -c %s "$OUT/vmlinuz") bytes)"

# Wanted drivers (those that are =y in this kernel are simply not found) and
# their dependency closure from the modules' own `depends` field.
WANTED=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
        failover net_failover virtio_net virtio-rng ena evdev button)
MODS=$OUT/modules
rm -rf "$MODS" && mkdir -p "$MODS"
python3 - "$MODROOT" "$CONFIG" "$MODS" "${WANTED[@]}" <<'PY'
import os, re, subprocess, sys, shutil
modroot, config, out, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
norm = lambda n: n.replace("-", "_")
files = {}
for d, _, fs in os.walk(os.path.join(modroot, "kernel")):
    for f in fs:
        if f.endswith(".ko"):
            files[norm(f[:-3])] = os.path.join(d, f)
builtin = set()
bpath = os.path.join(modroot, "modules.builtin")
if os.path.exists(bpath):
    builtin = {norm(os.path.basename(l.strip())[:-3]) for l in open(bpath) if l.strip()}
def deps(name):
    r = subprocess.run(["modinfo", "-F", "depends", files[name]], capture_output=True, text=True, check=True)
    return [norm(x) for x in r.stdout.strip().split(",") if x]
closure, order, report = {}, [], []
def visit(n):
    if n in closure: return
    closure[n] = deps(n)
    for d in closure[n]:
        if d not in files: raise SystemExit(f"dependency {d} of {n} not found")
        visit(d)
    order.append(n)
for w in wanted:
    n = norm(w)
    if n in files:
        visit(n); report.append(f"{w}=module")
    elif n in builtin:
        report.append(f"{w}=built-in")
    else:
        report.append(f"{w}=absent")
print("build-image: modules: " + " ".join(report), file=sys.stderr)
with open(os.path.join(out, "modules.dep"), "w") as f:
    for n in sorted(closure):
        base = os.path.basename(files[n])
        shutil.copyfile(files[n], os.path.join(out, base))
        # flat paths: /lib/modules/NAME.ko; deps listed in load order (deepest first)
        def rec(m, acc):
            for d in closure[m]:
                if d not in acc: acc.append(d); rec(d, acc)
            return acc
        dl = [os.path.basename(files[d]) for d in rec(n, [])]
        f.write(f"{base}: {' '.join(dl)}".rstrip() + "\n")
PY

# --- initramfs (deterministic newc, written by Python) -----------------------
INPUT_HASH=$( (sha256sum "$OUT/vssm" "$OUT/vmlinuz" "$MODS"/* "$STUB" "$0"; echo "$CMDLINE") | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/.inputs" ] && [ "$(cat "$OUT/.inputs")" = "$INPUT_HASH" ] \
   && [ -f "$OUT/initramfs.cpio.gz" ] && [ -f "$OUT/vssm.efi" ] && [ -f "$OUT/vssm.raw" ]; then
  log "initramfs and UKI up to date"
else
  python3 - "$OUT/vssm" "$MODS" "$OUT/initramfs.cpio.gz" <<'PY'
import gzip, os, sys
binary, mods, out = sys.argv[1:]
entries = []  # (name, mode, data)
for d in ("dev", "etc", "lib", "lib/modules", "proc", "run", "sys", "tmp"):
    entries.append((d, 0o040755 if d != "tmp" else 0o041777, None))
entries.append(("init", 0o100555, open(binary, "rb").read()))
for f in sorted(os.listdir(mods)):
    entries.append((f"lib/modules/{f}", 0o100444, open(os.path.join(mods, f), "rb").read()))
def hdr(ino, name, mode, size, nlink):
    n = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(n), 0]
    h = b"070701" + b"".join(b"%08X" % v for v in fields) + n
    return h + b"\0" * (-len(h) % 4)
buf = bytearray()
for i, (name, mode, data) in enumerate(entries, start=1):
    buf += hdr(i, name, mode, len(data or b""), 2 if data is None else 1)
    if data:
        buf += data + b"\0" * (-len(data) % 4)
buf += hdr(0, "TRAILER!!!", 0, 0, 1)
buf += b"\0" * (-len(buf) % 512)
with open(out + ".tmp", "wb") as raw:
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as g:
        g.write(bytes(buf))
os.replace(out + ".tmp", out)
PY
  log "initramfs: $(stat -c %s "$OUT/initramfs.cpio.gz") bytes"

  # --- UKI: objcopy onto the systemd EFI stub ---------------------------------
  printf 'ID=vssm\nNAME="VSSM appliance"\nPRETTY_NAME="VSSM appliance (kernel %s)"\nVERSION_ID=%s\n' \
    "$KVER" "$(sed -n 's/^version *= *"\(.*\)"/\1/p' vssm/Cargo.toml | head -n1)" > "$OUT/os-release"
  printf '%s' "$CMDLINE" > "$OUT/cmdline"
  # Section VMAs: after the stub's last section, each aligned to 4 KiB; .linux
  # last (the kernel may decompress in place past its own end).
  read -r V_OSREL V_CMDLINE V_INITRD V_LINUX < <(python3 - "$STUB" "$OUT/os-release" "$OUT/cmdline" \
      "$OUT/initramfs.cpio.gz" "$OUT/vmlinuz" <<'PY'
import os, subprocess, sys
stub, *parts = sys.argv[1:]
out = subprocess.run(["objdump", "-h", stub], capture_output=True, text=True, check=True).stdout
end = 0
for line in out.splitlines():
    f = line.split()
    if len(f) == 7 and f[0].isdigit():
        end = max(end, int(f[3], 16) + int(f[2], 16))
align = lambda x: (x + 0xFFF) & ~0xFFF
vmas, pos = [], align(end)
for p in parts:
    vmas.append(pos); pos = align(pos + os.path.getsize(p))
print(" ".join(hex(v) for v in vmas))
PY
)
  objcopy \
    --add-section .osrel="$OUT/os-release"         --change-section-vma .osrel="$V_OSREL" \
    --add-section .cmdline="$OUT/cmdline"          --change-section-vma .cmdline="$V_CMDLINE" \
    --add-section .initrd="$OUT/initramfs.cpio.gz" --change-section-vma .initrd="$V_INITRD" \
    --add-section .linux="$OUT/vmlinuz"            --change-section-vma .linux="$V_LINUX" \
    "$STUB" "$OUT/vssm.efi.tmp"
  mv -f "$OUT/vssm.efi.tmp" "$OUT/vssm.efi"
  log "UKI: $(stat -c %s "$OUT/vssm.efi") bytes"

  # --- raw disk: GPT + ESP (what packer writes to the AMI's root volume) ------
  RAW=$OUT/vssm.raw.tmp
  rm -f "$RAW"
  size_mib=$(( ($(stat -c %s "$OUT/vssm.efi") >> 20) + 48 ))
  [ "$size_mib" -ge 64 ] || size_mib=64
  truncate -s "${size_mib}M" "$RAW"
  sgdisk -n 1:2048:0 -t 1:ef00 -c 1:ESP -U 00000000-0000-4000-8000-000000005653 \
         -u 1:00000000-0000-4000-8000-000000000e5b "$RAW" >/dev/null 2>&1 || true
  last=$(sgdisk -i 1 "$RAW" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
  [ -n "$last" ] || { log "ERROR: sgdisk did not create the ESP"; exit 1; }
  mkfs.vfat -F 32 -S 512 -s 1 -n VSSM-ESP -i 56534d31 --invariant --offset 2048 "$RAW" \
            $(( (last - 2048 + 1) / 2 )) >/dev/null 2>&1 \
    || mkfs.vfat -F 32 -S 512 -s 1 -n VSSM-ESP -i 56534d31 --offset 2048 "$RAW" $(( (last - 2048 + 1) / 2 )) >/dev/null
  MTOOLS_SKIP_CHECK=1 mmd -i "$RAW@@1M" ::EFI ::EFI/BOOT
  MTOOLS_SKIP_CHECK=1 mcopy -m -i "$RAW@@1M" "$OUT/vssm.efi" ::EFI/BOOT/BOOTX64.EFI
  mv -f "$RAW" "$OUT/vssm.raw"
  log "disk: $(stat -c %s "$OUT/vssm.raw") bytes (GPT, ESP with EFI/BOOT/BOOTX64.EFI)"
  echo "$INPUT_HASH" > "$OUT/.inputs"
fi

python3 - "$OUT" "$KVER" "$CMDLINE" <<'PY'
import hashlib, json, os, sys
out, kver, cmdline = sys.argv[1:]
m = {"kernel": kver, "cmdline": cmdline, "files": {}}
for f in ("vssm", "vmlinuz", "initramfs.cpio.gz", "vssm.efi", "vssm.raw"):
    p = os.path.join(out, f)
    m["files"][f] = {"bytes": os.path.getsize(p), "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
json.dump(m, open(os.path.join(out, "manifest.json"), "w"), indent=2)
print(json.dumps({k: v["bytes"] for k, v in m["files"].items()}))
PY
