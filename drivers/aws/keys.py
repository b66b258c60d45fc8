"""The machine's SSH key: generated (docker-machine's id_rsa) or taken from --aws-ssh-keypath."""
from __future__ import annotations

import os
import shutil

from ...fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write


def generate(machine_dir, comment: str) -> tuple[str, str]:
    """Write machine_dir/id_rsa (0600) and id_rsa.pub; return (private path, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode() + f" {comment}"
    path = os.path.join(str(machine_dir), "id_rsa")
    atomic_write(path, private, mode=PRIVATE_FILE)
    atomic_write(path + ".pub", public + "\n", mode=PUBLIC_FILE)
    return path, public


def copy_key(src: str, machine_dir) -> tuple[str, str | None]:
    """Copy the user's key (and its .pub) into the machine's folder as id_rsa, as docker-machine does."""
    dst = os.path.join(str(machine_dir), "id_rsa")
    public = None
    if os.path.abspath(src) != os.path.abspath(dst):
        with open(src, "rb") as f:
            atomic_write(dst, f.read(), mode=PRIVATE_FILE)
        if os.path.isfile(src + ".pub"):
            shutil.copyfile(src + ".pub", dst + ".pub")
    if os.path.isfile(dst + ".pub"):
        with open(dst + ".pub") as f:
            public = f.read().strip() or None
    return dst, public
