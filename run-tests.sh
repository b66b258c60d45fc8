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
slow_log=$(mktemp /tmp/machine-slow-tier.XXXXXX)
t0=$(date +%s)
python3 -m pytest -q -p no:cacheprovider --durations=15 -m "not vm and not openstack" tests >"$log" 2>&1 &
fast=$!
set +e
python3 -m pytest -q -p no:cacheprovider --durations=25 -m "vm or openstack" tests 2>&1 | tee "$slow_log"
slow_rc=${PIPESTATUS[0]}
wait "$fast"
fast_rc=$?
set -e
echo "==================== fast tiers (ran alongside) ===================="
cat "$log"
# The last lines are what a CI page shows: every failure of both tiers and their totals.
echo "==================== summary ===================="
for f in "$slow_log" "$log"; do
  grep -E '^(FAILED|ERROR) | in [0-9.]+s( \(.*\))?( =+)?$' "$f" | tail -40 || true
done
rm -f "$log" "$slow_log"
echo "fast tiers: exit $fast_rc; VM and OpenStack tiers: exit $slow_rc; wall $(( $(date +%s) - t0 ))s"
[ "$fast_rc" -eq 0 ] && [ "$slow_rc" -eq 0 ]
