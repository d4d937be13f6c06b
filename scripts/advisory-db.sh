#!/usr/bin/env bash
# The RustSec advisory database for `cargo deny check advisories`, offline.
#
# CI machines cannot reach GitHub, so the advisories of the crates in
# Cargo.lock live in deny/advisory-db/ (RustSec data, CC0-1.0), with the
# snapshot's commit and date in deny/advisory-db/SNAPSHOT. This script turns
# that folder into the git repository cargo-deny expects under target/.
#
#   scripts/advisory-db.sh            build target/advisory-db from deny/advisory-db
#   scripts/advisory-db.sh --refresh CLONE
#                                     refresh deny/advisory-db from a full clone of
#                                     https://github.com/rustsec/advisory-db for every
#                                     crate now in Cargo.lock (run after dependency changes)
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSET=deny/advisory-db

if [[ ${1:-} == --refresh ]]; then
    clone=${2:?usage: $0 --refresh PATH-TO-ADVISORY-DB-CLONE}
    rm -rf "$SUBSET" && mkdir -p "$SUBSET/crates"
    # Every crate name of the lock file, also those of other platforms.
    for name in $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock | sort -u); do
        if [[ -d $clone/crates/$name ]]; then cp -r "$clone/crates/$name" "$SUBSET/crates/"; fi
    done
    cp "$clone/LICENSE.txt" "$SUBSET/"
    git -C "$clone" log -1 --format='commit %H%ndate %cI' > "$SUBSET/SNAPSHOT"
    echo "advisories of $(ls "$SUBSET/crates" | wc -l) crates from $(sed -n 's/^date //p' "$SUBSET/SNAPSHOT")"
    exit 0
fi

# cargo-deny looks in db-path for advisory-db-<hash of the database URL> and
# reads the date of its HEAD commit; the commit carries the snapshot's date.
db=target/advisory-db/advisory-db-3157b0e258782691
date=$(sed -n 's/^date //p' "$SUBSET/SNAPSHOT")
rm -rf "$db" && mkdir -p "$db"
cp -r "$SUBSET/." "$db/"
git -C "$db" init -q -b main
git -C "$db" add -A
GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date git -C "$db" \
    -c user.name=vssm -c user.email=vssm@localhost commit -q -m "RustSec snapshot $date"
