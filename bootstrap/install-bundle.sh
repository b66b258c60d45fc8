# install-bundle.sh TAR SHA256 FAMILY [PACKAGE...]: install an offline bundle of .deb or .rpm files.
# Debian family: the bundle becomes a local apt repository (private lists, nothing else
# consulted), so apt resolves against what the host really has and installs only what is
# missing; extra or older .debs in the bundle are never forced on the host.
tarball=$1
want=$2
family=$3
shift 3
dir=/var/cache/machine/bundle
log=/tmp/machine-install-docker.log
# First wait for any package manager still running: an earlier provision whose SSH
# session died leaves its apt-get running, reading from $dir — never pull that from under it.
wait_locks
got=$(sha256sum < "$tarball" | cut -d ' ' -f 1)
if [ "$got" != "$want" ]; then
  echo "the uploaded bundle is damaged (sha256 $got, expected $want)" >&2
  rm -f "$tarball"
  exit 10
fi
rm -rf "$dir" && mkdir -p "$dir" && tar -xf "$tarball" -C "$dir" || { echo "cannot unpack the bundle" >&2; exit 21; }
rm -f "$tarball"
debs=$(find "$dir" -name '*.deb' | sort)
rpms=$(find "$dir" -name '*.rpm' | sort)
case $family in
  debian)
    [ -n "$debs" ] || { echo "the bundle holds no .deb packages for this $family host" >&2; exit 21; }
    if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a >"$log" 2>&1; fi
    if command -v apt-get >/dev/null 2>&1; then
      pkgs="$*"
      for d in $debs; do
        dpkg-deb -f "$d" || exit 21
        printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "${d#"$dir"/}" "$(wc -c < "$d")" \
          "$(sha256sum < "$d" | cut -d ' ' -f 1)"
        [ $# -gt 0 ] || pkgs="$pkgs $(dpkg-deb -f "$d" Package)"
      done > "$dir/Packages"
      echo "deb [trusted=yes] file:$dir ./" > "$dir/sources.list"
      mkdir -p "$dir/lists/partial" "$dir/archives/partial"
      repo="-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=$dir/none"
      repo="$repo -o Dir::State::Lists=$dir/lists -o Dir::Cache::archives=$dir/archives -o Acquire::Languages=none"
      # shellcheck disable=SC2086
      { apt-get $repo -q update && apt-get $APT_OPTS $repo -q install -y --no-install-recommends $pkgs; } >>"$log" 2>&1 \
        || { tail -n 25 "$log" >&2; exit 21; }
    else
      # shellcheck disable=SC2086
      dpkg -i $debs >>"$log" 2>&1 || { tail -n 25 "$log" >&2; exit 21; }
    fi
    ;;
  redhat|suse)
    [ -n "$rpms" ] || { echo "the bundle holds no .rpm packages for this $family host" >&2; exit 21; }
    # shellcheck disable=SC2086
    if command -v dnf >/dev/null 2>&1; then dnf install -y --disablerepo='*' $rpms >"$log" 2>&1
    elif command -v zypper >/dev/null 2>&1; then zypper --non-interactive --no-gpg-checks install --no-recommends $rpms >"$log" 2>&1
    elif command -v yum >/dev/null 2>&1; then yum localinstall -y --disablerepo='*' $rpms >"$log" 2>&1
    else rpm -Uvh --replacepkgs $rpms >"$log" 2>&1
    fi || { tail -n 25 "$log" >&2; exit 21; }
    ;;
  *)
    echo "no bundle install for OS family $family" >&2
    exit 31 ;;
esac
need_dockerd
systemctl enable docker.service >/dev/null 2>&1 || true
