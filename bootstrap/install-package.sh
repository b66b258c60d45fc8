# install-package.sh FAMILY OS_ID: the distribution's own engine packages.
family=$1
os_id=$2
if command -v dockerd >/dev/null 2>&1 && [ "${MACHINE_FORCE:-0}" != 1 ]; then exit 0; fi
wait_locks
log=/tmp/machine-install-docker.log
case $family in
  debian)
    if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a >"$log" 2>&1; fi
    pm_run apt-get $APT_OPTS -q update >>"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 10; }
    pm_run apt-get $APT_OPTS -q install -y --no-install-recommends docker.io >>"$log" 2>&1 \
      || { tail -n 20 "$log" >&2; exit 20; }
    ;;
  redhat)
    pm=dnf; command -v dnf >/dev/null 2>&1 || pm=yum
    case $os_id in
      fedora) pkgs="moby-engine" ;;
      amzn) pkgs="docker" ;;
      *)
        # RHEL and its rebuilds ship no Docker Engine; use Docker's own repository.
        if [ ! -f /etc/yum.repos.d/docker-ce.repo ]; then
          repo=https://download.docker.com/linux/centos/docker-ce.repo
          [ "$os_id" = rhel ] && repo=https://download.docker.com/linux/rhel/docker-ce.repo
          if command -v curl >/dev/null 2>&1; then curl -fsSL -o /etc/yum.repos.d/docker-ce.repo "$repo" || exit 10
          else echo "curl is needed to add Docker's repository" >&2; exit 12; fi
        fi
        pkgs="docker-ce docker-ce-cli containerd.io" ;;
    esac
    pm_run $pm install -y $pkgs >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 20; }
    ;;
  suse)
    pm_run zypper --non-interactive install --no-recommends docker >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 20; }
    ;;
  *)
    echo "no package install for OS family $family" >&2
    exit 31 ;;
esac
need_dockerd
systemctl enable docker.service >/dev/null 2>&1 || true
