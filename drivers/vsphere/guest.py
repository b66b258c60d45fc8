"""What the guest gets at first boot: the machine's SSH key, through cloud-init.

Two ways in (--vsphere-cloud-init-via): `guestinfo` puts meta-data and user-data, base64, into
the VM's extraConfig (cloud-init's VMware datasource reads them through guest tools); `iso`
uploads a NoCloud seed (qemu driver's builder) to the datastore and attaches it as a CD-ROM.
A user's own --vsphere-cloud-init file is sent as a second user-data part (cloud-init merges
multipart user-data), so their config and our key both arrive.
"""
from __future__ import annotations

import base64
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from ...errors import UsageError
from ...fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write

KEY_NAME = "id_ed25519"


def make_key(machine_dir: Path, comment: str) -> tuple[str, str]:
    """(private key path, public key line); an ed25519 pair written 0600/0644."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path = Path(machine_dir) / KEY_NAME
    line = pub.decode() + f" {comment}"
    atomic_write(path, priv, mode=PRIVATE_FILE)
    atomic_write(str(path) + ".pub", line + "\n", mode=PUBLIC_FILE)
    return str(path), line


def read_user_cloud_init(path: str) -> str:
    if not path:
        return ""
    try:
        text = Path(path).expanduser().read_text()
    except OSError as e:
        raise UsageError(f"--vsphere-cloud-init {path}: {e.strerror}", "give a readable cloud-init file") from None
    if not text.strip():
        return ""
    return text


def user_data(hostname: str, public_key: str, ssh_user: str, extra: str = "") -> str:
    from ..qemu import seed

    ours = seed.user_data(hostname, public_key, ssh_user)
    if not extra:
        return ours
    msg = MIMEMultipart()
    for text in (ours, extra):
        subtype = "cloud-config" if text.lstrip().startswith("#cloud-config") else \
            ("x-shellscript" if text.startswith("#!") else "cloud-config")
        msg.attach(MIMEText(text, subtype, "us-ascii" if text.isascii() else "utf-8"))
    return msg.as_string()


def meta_data(instance_id: str, hostname: str) -> str:
    from ..qemu import seed

    return seed.meta_data(instance_id, hostname)


def guestinfo(meta: str, user: str) -> dict[str, str]:
    """extraConfig keys read by cloud-init's VMware (guestinfo) datasource."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return {"guestinfo.metadata": b64(meta), "guestinfo.metadata.encoding": "base64",
            "guestinfo.userdata": b64(user), "guestinfo.userdata.encoding": "base64"}


def seed_iso(meta: str, user: str) -> bytes:
    from ..qemu import seed

    return seed.build_iso({"meta-data": meta, "user-data": user})
