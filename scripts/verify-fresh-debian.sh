#!/usr/bin/env bash
# Verifies the README's two Quick-start commands on a bare Debian 12 (bookworm, minbase): a root made by
# debootstrap, entered with chroot, holding only a clone of this repository. Run as root on a Debian host.
#   scripts/verify-fresh-debian.sh [ROOT_DIR]      (default /var/tmp/contra-bookworm; reused if present)
# Logs: ROOT_DIR/root/contra/verify-{demo,test}.log; prints the wall time of each command.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/var/tmp/contra-bookworm}
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
if [[ ! -x "$root/bin/bash" ]]; then
  debootstrap --variant=minbase bookworm "$root"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
for fs in proc sys dev; do
  mountpoint -q "$root/$fs" || mount --bind "/$fs" "$root/$fs"
done
trap 'for fs in dev sys proc; do umount -l "$root/$fs" 2>/dev/null || true; done' EXIT
rm -rf "$root/root/contra"
git clone -q "$repo" "$root/root/contra"
for cmd in demo test; do
  start=$SECONDS
  if chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
      /bin/bash -c "cd /root/contra && ./run.sh $cmd" >"$root/root/contra/verify-$cmd.log" 2>&1; then
    echo "./run.sh $cmd: OK in $((SECONDS - start)) s"
  else
    echo "./run.sh $cmd: FAILED after $((SECONDS - start)) s (see $root/root/contra/verify-$cmd.log)"
    tail -20 "$root/root/contra/verify-$cmd.log"
    exit 1
  fi
done
tail -12 "$root/root/contra/verify-demo.log"
tail -5 "$root/root/contra/verify-test.log"
