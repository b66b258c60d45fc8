"""The machine's SSH key: generated (docker-machine's id_rsa) or taken from --openstack-private-key-file."""
from __future__ import annotations

import os
import shutil

from ...errors import UsageError
from ...fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write


def generate(machine_dir: str, comment: str) -> tuple[str, str]:
    """Write machine_dir/id_rsa (0600) and id_rsa.pub; return (private path, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode() + f" {comment}"
    path = os.path.join(machine_dir, "id_rsa")
    atomic_write(path, private, mode=PRIVATE_FILE)
    atomic_write(path + ".pub", public + "\n", mode=PUBLIC_FILE)
    return path, public


def public_key_of(private_path: str) -> str:
    """The OpenSSH public key line of a private key file (its .pub file if it has one)."""
    pub = private_path + ".pub"
    if os.path.isfile(pub):
        with open(pub) as f:
            line = f.read().strip()
        if line:
            return line
    from cryptography.hazmat.primitives import serialization

    try:
        with open(private_path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"cannot read --openstack-private-key-file {private_path}: {e.strerror}",
                         "pass the path of an existing private key") from e
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"cannot load --openstack-private-key-file {private_path} ({e})",
                         "pass an unencrypted private key, or put its public key next to it as FILE.pub") from e
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def copy_private(src: str, machine_dir: str) -> str:
    """Copy the user's key into the machine's folder as id_rsa (0600), as docker-machine does."""
    dst = os.path.join(machine_dir, "id_rsa")
    if os.path.abspath(src) != os.path.abspath(dst):
        with open(src, "rb") as f:
            atomic_write(dst, f.read(), mode=PRIVATE_FILE)
        if os.path.isfile(src + ".pub"):
            shutil.copyfile(src + ".pub", dst + ".pub")
    return dst


def same_key(a: str | None, b: str | None) -> bool:
    """Compare two OpenSSH public key lines by type and key material (comments ignored)."""
    if not a or not b:
        return False
    return a.split()[:2] == b.split()[:2]
