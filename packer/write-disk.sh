#!/bin/sh
# Runs on the temporary builder instance (as root): writes the VSSM disk image
# onto the extra EBS volume that becomes the AMI's root volume. On Nitro the
# volume is an NVMe device whose serial is the EBS volume id; it is the only
# disk of the wanted size without partitions mounted.
set -eu
image=$1
size_gib=$2
dev=""
for d in /dev/nvme[0-9]n1 /dev/xvdf /dev/sdf; do
  [ -b "$d" ] || continue
  if lsblk -nro MOUNTPOINT "$d" | grep -q .; then continue; fi   # the builder's own root
  bytes=$(blockdev --getsize64 "$d")
  [ "$bytes" -eq $((size_gib * 1024 * 1024 * 1024)) ] && { dev=$d; break; }
done
[ -n "$dev" ] || { echo "write-disk: no unmounted ${size_gib} GiB volume found" >&2; lsblk >&2; exit 1; }
echo "write-disk: writing $image to $dev"
dd if="$image" of="$dev" bs=4M conv=fsync status=none
sgdisk -e "$dev" 2>/dev/null || true   # move the backup GPT header to the end of the volume
sync
