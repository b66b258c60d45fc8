# common.sh: prepended to every bootstrap script machine runs on a host (POSIX sh, as root).
# Exit codes the provisioner retries on: 10 download failed, 11 package manager busy, 20 install failed.
# Not retried: 12 no download tool, 21 bundle install failed, 30 no dockerd after install, 31 unsupported OS.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
export DEBIAN_FRONTEND=noninteractive
# apt waits for dpkg's lock itself (apt >= 1.9.11) and zypper honours ZYPP_LOCK_TIMEOUT.
APT_OPTS="-o DPkg::Lock::Timeout=${MACHINE_LOCK_TIMEOUT:-600} -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
export ZYPP_LOCK_TIMEOUT="${MACHINE_LOCK_TIMEOUT:-600}"

# Names of running package-manager processes (comm), space separated; empty when idle.
pm_busy() {
  busy=""
  for c in /proc/[0-9]*/comm; do
    read -r n < "$c" 2>/dev/null || continue
    case $n in
      apt|apt-get|aptitude|dpkg|yum|dnf|dnf-automatic|rpm|zypper) busy="$busy $n" ;;
    esac
  done
  echo "${busy# }"
}

# Wait until no package manager runs (cloud-init's or unattended upgrades' installs).
wait_locks() {
  limit=${MACHINE_LOCK_TIMEOUT:-600}
  waited=0
  while [ -n "$(pm_busy)" ]; do
    if [ "$waited" -ge "$limit" ]; then
      echo "package manager still busy after ${limit}s: $(pm_busy)" >&2
      exit 11
    fi
    sleep 2
    waited=$((waited + 2))
  done
}

# Run a command, retrying up to 3 times while it fails with apt's/dnf's generic
# error code and a package manager is busy (the lock race after cloud-init).
pm_run() {
  n=0
  while :; do
    "$@" && return 0
    rc=$?
    n=$((n + 1))
    if [ "$n" -ge 3 ]; then return "$rc"; fi
    wait_locks
    sleep 3
  done
}

need_dockerd() {
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "the install finished but there is no dockerd on the host" >&2
    exit 30
  fi
}
