#!/usr/bin/env bash
# Rebuilds every committed fixture with the real tools (mkfs.ext*, mke2fs, debugfs, mkntfs,
# ntfscp, ntfs-3g). Each area's script records the tool versions it used next to its fixtures.
# Usage: scripts/make_fixtures.sh [area ...]   (areas: demo ext ntfs; default all)
set -euo pipefail
cd "$(dirname "$0")"
areas=("$@")
[ ${#areas[@]} -gt 0 ] || areas=(demo ext ntfs)
for a in "${areas[@]}"; do
  if [ -x "fixtures/$a.sh" ] || [ -f "fixtures/$a.sh" ]; then
    echo "== fixtures: $a"
    bash "fixtures/$a.sh"
  else
    echo "no fixture script for $a" >&2
    exit 1
  fi
done
