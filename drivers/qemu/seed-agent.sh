#!/bin/sh
# machine-seed: a Machine image's identity, read at boot from its seed disk (the volume
# labelled cidata, file machine-seed.sh, written by the qemu driver). It does for our own
# images what cloud-init does for distro cloud images, without cloud-init's Python: its four
# stages cost ~25 s of CPU per boot under TCG, which is most of a create's wait for SSH.
#
# Every boot: the network files (runtime, /run/systemd/network) and the boot commands (the
# shared-folder mounts). Once per instance id: hostname, SSH host keys, the login key,
# the root filesystem grown to the disk. The driver turns this on, and cloud-init off, on
# the kernel command line (machine.seed cloud-init=disabled), only for images that carry it.
set -eu

SEED=/dev/disk/by-label/cidata
MNT=/run/machine-seed
STATE=/var/lib/machine-seed

log() { echo "machine-seed: $*"; }

# called by the seed's ms_network: one .network file per NIC, matched by MAC
ms_link() {  # NAME MAC dhcp|ADDRESS/PREFIX
    {
        printf '[Match]\nMACAddress=%s\n\n[Network]\n' "$2"
        if [ "$3" = dhcp ]; then printf 'DHCP=ipv4\n'; else printf 'Address=%s\n' "$3"; fi
    } > "/run/systemd/network/10-machine-$1.network"
}

first_boot() {
    log "first boot of instance $MS_INSTANCE_ID"
    printf '%s\n' "$MS_HOSTNAME" > /etc/hostname
    # the hostname resolves (sudo otherwise warns "unable to resolve host" on every call)
    sed -i '/^127\.0\.1\.1[[:space:]]/d' /etc/hosts
    printf '127.0.1.1 %s\n' "$MS_HOSTNAME" >> /etc/hosts

    rm -f /etc/ssh/ssh_host_*
    ssh-keygen -q -t ed25519 -N '' -C "root@$MS_HOSTNAME" -f /etc/ssh/ssh_host_ed25519_key
    ssh-keygen -q -t ecdsa -N '' -C "root@$MS_HOSTNAME" -f /etc/ssh/ssh_host_ecdsa_key

    if [ "$MS_USER" = root ]; then
        home=/root
    else
        id -u "$MS_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$MS_USER"
        printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$MS_USER" > /etc/sudoers.d/90-machine
        chmod 0440 /etc/sudoers.d/90-machine
        home=$(getent passwd "$MS_USER" | cut -d: -f6)
    fi
    install -d -m 0700 "$home/.ssh"
    printf '%s\n' "$MS_SSH_KEY" > "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
    chown -R "$MS_USER:" "$home/.ssh"

    resize2fs "$(findmnt -n -o SOURCE /)" >/dev/null 2>&1 || log "the root filesystem was not grown"

    # on the console, as cloud-init prints them: a way to check the key pinned on first contact
    echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
    for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -f "$k"; done
    echo "-----END SSH HOST KEY FINGERPRINTS-----"

    mkdir -p "$STATE"
    printf '%s\n' "$MS_INSTANCE_ID" > "$STATE/instance-id"
}

[ -e "$SEED" ] || { log "no seed disk (a volume labelled cidata)"; exit 1; }
mkdir -p "$MNT"
mount -t iso9660 -o ro "$SEED" "$MNT"
trap 'umount "$MNT" 2>/dev/null || true' EXIT
[ -f "$MNT/machine-seed.sh" ] || { log "the seed disk has no machine-seed.sh"; exit 1; }
# shellcheck source=/dev/null
. "$MNT/machine-seed.sh"

mkdir -p /run/systemd/network
ms_network
if [ "$(cat "$STATE/instance-id" 2>/dev/null || true)" != "$MS_INSTANCE_ID" ]; then
    first_boot
fi
cat /etc/hostname > /proc/sys/kernel/hostname
# a failing boot command (a shared folder that will not mount) must not keep SSH away
ms_bootcmd || log "a boot command failed (exit $?)"
