#!/usr/bin/env bash
# Every test tier, on a fresh Debian 12 machine too: installs what the tiers need from this
# repo's own files (idempotent), then runs the suite. With no arguments three pytest processes
# run side by side: the fast tiers; the VM tests that boot only their own VMs; and the rest of
# the VM and OpenStack tiers (the shared VM, the loopback gateways, the OpenStack stack). A TCG
# guest keeps one core busy, so one stream of VM tests leaves the other core idle; two streams
# use both. The last stream's output is shown live, the others' after it. With arguments,
# pytest runs once with them (e.g. ./run-tests.sh -m "not vm and not openstack" for the fast tiers).
set -euo pipefail
cd "$(dirname "$0")"
.ci/install-deps
if [ "$#" -gt 0 ] && [ "$*" != "tests" ]; then
  exec python3 -m pytest -q "$@"
fi
# VM tests that use neither the shared VM nor a loopback gateway nor OpenStack: a stream of their own.
# The cluster e2e runs the plugin's example (tests/examples) on its own cluster: the example's
# own one-VM cluster is not made again in CI (run it alone: pytest -m vm tests/examples).
OWN_VM_TESTS=(tests/e2e/test_cluster_e2e.py tests/e2e/test_generic_cli.py tests/e2e/test_qemu.py
              tests/e2e/test_qemu_cloud.py)
ignore=(--ignore tests/examples)
for t in "${OWN_VM_TESTS[@]}"; do ignore+=(--ignore "$t"); done
# The OpenStack end to end waits until the host has room for its three VMs; the other stream
# holds up to five at a time (the cluster e2e's batch step).
export MACHINE_TEST_MAX_QEMU="${MACHINE_TEST_MAX_QEMU:-9}"

log=$(mktemp /tmp/machine-fast-tier.XXXXXX)
own_log=$(mktemp /tmp/machine-own-vm-tier.XXXXXX)
slow_log=$(mktemp /tmp/machine-slow-tier.XXXXXX)
t0=$(date +%s)
pytest=(python3 -m pytest -q -p no:cacheprovider)
"${pytest[@]}" --durations=15 -m "not vm and not openstack" tests >"$log" 2>&1 &
fast=$!
"${pytest[@]}" --durations=15 -m "vm or openstack" --ignore tests/examples "${OWN_VM_TESTS[@]}" >"$own_log" 2>&1 &
own=$!
set +e
"${pytest[@]}" --durations=25 -m "vm or openstack" "${ignore[@]}" tests 2>&1 | tee "$slow_log"
slow_rc=${PIPESTATUS[0]}
wait "$own"
own_rc=$?
wait "$fast"
fast_rc=$?
set -e
echo "==================== VM tests with their own VMs (ran alongside) ===================="
cat "$own_log"
echo "==================== fast tiers (ran alongside) ===================="
cat "$log"
# The last lines are what a CI page shows: every failure of every stream and their totals.
echo "==================== summary ===================="
for f in "$slow_log" "$own_log" "$log"; do
  grep -E '^(FAILED|ERROR) |^=* ?([0-9]+ (passed|failed|errors?|skipped|deselected)|no tests ran)' "$f" | tail -40 || true
done
rm -f "$log" "$own_log" "$slow_log"
echo "fast tiers: exit $fast_rc; own-VM tests: exit $own_rc; shared-VM, gateway and OpenStack tests: exit $slow_rc;" \
     "wall $(( $(date +%s) - t0 ))s"
[ "$fast_rc" -eq 0 ] && [ "$own_rc" -eq 0 ] && [ "$slow_rc" -eq 0 ]
