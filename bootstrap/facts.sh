# facts.sh: everything provisioning needs to know about the host, in one round trip.
# Arguments: files whose sha256 the provisioner compares with what it would write.
# Output: "key=value" lines; /etc/os-release as "os:LINE"; docker.service as "unit:LINE";
# "hash:PATH=SHA256" (empty when the file is missing).
if command -v cloud-init >/dev/null 2>&1; then
  echo "cloud_init=1"
  if [ -f /run/cloud-init/result.json ]; then
    # written when cloud-init finished this boot: no need to start its (slow) Python
    echo "cloud_init_status=done"
  elif [ -f /etc/cloud/cloud-init.disabled ] || grep -qw 'cloud-init=disabled' /proc/cmdline 2>/dev/null; then
    # off for this boot (Machine's own images boot with machine-seed instead): nothing to wait for
    echo "cloud_init_status=disabled"
  elif [ "${MACHINE_WAIT_CLOUD_INIT:-1}" = 1 ]; then
    t0=$(date +%s)
    # exit 1/2 (errors, degraded) are not ours to fail on; only record them
    st=$(timeout "${MACHINE_CLOUD_INIT_TIMEOUT:-900}" cloud-init status --wait 2>/dev/null | sed -n 's/^status: *//p' | tail -n 1)
    echo "cloud_init_wait_s=$(( $(date +%s) - t0 ))"
    echo "cloud_init_status=${st:-unknown}"
  fi
else
  echo "cloud_init=0"
fi
for f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$f" ]; then sed 's/^/os:/' "$f"; break; fi
done
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null)"
echo "user=$(id -un)"
if [ -d /run/systemd/system ]; then echo "systemd=1"; else echo "systemd=0"; fi
for pm in apt-get dpkg dnf yum zypper rpm curl wget; do
  command -v "$pm" >/dev/null 2>&1 && echo "has:$pm=1"
done
echo "pm_busy=$(pm_busy)"
if command -v dpkg >/dev/null 2>&1 && [ -n "$(dpkg --audit 2>/dev/null)" ]; then echo "dpkg_broken=1"; fi
dockerd=$(command -v dockerd 2>/dev/null)
echo "dockerd=$dockerd"
if [ -d /run/systemd/system ]; then
  echo "docker_active=$(systemctl is-active docker.service 2>/dev/null)"
  echo "docker_enabled=$(systemctl is-enabled docker.service 2>/dev/null)"
  frag=$(systemctl show -p FragmentPath docker.service 2>/dev/null | sed 's/^FragmentPath=//')
  echo "unit_path=$frag"
  if [ -n "$frag" ] && [ -r "$frag" ]; then sed 's/^/unit:/' "$frag"; fi
fi
# live-restore breaks a swarm node's dockerd, so the provisioner must know (docker
# writes this file on swarm init/join and removes the swarm folder on leave)
if [ -s "${MACHINE_DATA_ROOT:-/var/lib/docker}/swarm/docker-state.json" ]; then echo "swarm=active"; fi
for f in "$@"; do
  if [ -f "$f" ]; then
    echo "hash:$f=$(sha256sum < "$f" | cut -d ' ' -f 1)"
  else
    echo "hash:$f="
  fi
done
exit 0
