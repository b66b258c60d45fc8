#!/usr/bin/env bash
# Set up Machine on a fresh Debian 12 machine and run its main job: a real local VM
# with Docker Engine behind mutual TLS, then the local docker CLI talking to it.
# The VM image is built offline from Debian packages on first use (a few minutes) and cached.
set -euo pipefail
cd "$(dirname "$0")"
NAME=${1:-demo}
MACHINE_WITH_OPENSTACK=0 .ci/install-deps   # the OpenStack test packages are for the test suite only
machine ls -q --filter "name=^${NAME}\$" | grep -qx "$NAME" && machine rm -y "$NAME"
machine create -d qemu --qemu-network-mode isolated "$NAME"   # drop the flag for outbound network (docker pull)
machine ls --filter "name=^${NAME}\$"
docker --context "$NAME" version
eval "$(machine env --shell bash "$NAME")"
docker info --format 'engine {{.ServerVersion}} on {{.OperatingSystem}}, TLS-verified at '"$DOCKER_HOST"
echo "Done. Try: machine ssh $NAME -- uname -a ; machine rm -y $NAME"
