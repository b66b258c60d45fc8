# install-script.sh URL: run a get.docker.com-style install script.
url=$1
script=/tmp/machine-install-docker.sh
if command -v dockerd >/dev/null 2>&1 && [ "${MACHINE_FORCE:-0}" != 1 ]; then exit 0; fi
wait_locks
if command -v curl >/dev/null 2>&1; then
  curl -fsSL --retry 3 --connect-timeout 20 -o "$script" "$url" || exit 10
elif command -v wget >/dev/null 2>&1; then
  wget -q -T 20 -O "$script" "$url" || exit 10
else
  echo "neither curl nor wget is installed on the host, so $url cannot be fetched" >&2
  exit 12
fi
sh "$script" >/tmp/machine-install-docker.log 2>&1 || { tail -n 20 /tmp/machine-install-docker.log >&2; exit 20; }
need_dockerd
systemctl enable docker.service >/dev/null 2>&1 || true
