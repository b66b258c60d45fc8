#!/usr/bin/env bash
# Every test tier, on a fresh Debian 12 machine too: installs what the tiers need from this
# repo's own files (idempotent), then runs the suite. Extra arguments go to pytest
# (e.g. ./run-tests.sh -m "not vm and not openstack" for the fast tier).
set -euo pipefail
cd "$(dirname "$0")"
.ci/install-deps
exec python3 -m pytest -q "${@:-tests}"
