# start-engine.sh ACTION: ACTION is restart (config changed) or start (only if not running).
action=$1
systemctl enable docker.service >/dev/null 2>&1 || true
if [ "$action" = restart ]; then
  systemctl restart docker.service
else
  systemctl is-active -q docker.service || systemctl start docker.service
fi
rc=$?
if [ $rc -ne 0 ] || ! systemctl is-active -q docker.service; then
  echo "docker.service did not start; its last log lines:" >&2
  journalctl -u docker.service --no-pager -n 25 -o cat >&2 2>/dev/null || systemctl status docker.service --no-pager >&2
  exit 40
fi
