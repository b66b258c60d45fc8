#!/usr/bin/env bash
# Every test tier, on a fresh Debian 12 machine too: installs what the tiers need from this
# repo's own files (idempotent), then runs the suite. With no arguments the fast tiers and the
# VM/OpenStack tiers run side by side (two pytest processes, the fast tiers' output printed
# after the slow ones finish); with arguments, pytest runs once with them
# (e.g. ./run-tests.sh -m "not vm and not openstack" for the fast tiers only).
set -euo pipefail
cd "$(dirname "$0")"
.ci/install-deps
if [ "$#" -gt 0 ] && [ "$*" != "tests" ]; then
  exec python3 -m pytest -q "$@"
fi
log=$(mktemp /tmp/machine-fast-tier.XXXXXX)
t0=$(date +%s)
python3 -m pytest -q -p no:cacheprovider -m "not vm and not openstack" tests >"$log" 2>&1 &
fast=$!
set +e
python3 -m pytest -q -p no:cacheprovider -m "vm or openstack" tests
slow_rc=$?
wait "$fast"
fast_rc=$?
set -e
echo "==================== fast tiers (ran alongside) ===================="
cat "$log"
rm -f "$log"
echo "fast tiers: exit $fast_rc; VM and OpenStack tiers: exit $slow_rc; wall $(( $(date +%s) - t0 ))s"
[ "$fast_rc" -eq 0 ] && [ "$slow_rc" -eq 0 ]
