"""The machine's SSH key pair (docker-machine's id_rsa in the machine folder); RSA, as docker-machine made it."""
from __future__ import annotations

import os

from ...fsutil import PRIVATE_FILE, PUBLIC_FILE, atomic_write


def generate(machine_dir, comment: str) -> tuple[str, str]:
    """Write machine_dir/id_rsa (0600) and id_rsa.pub; return (private path, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode() + f" {comment}"
    path = os.path.join(str(machine_dir), "id_rsa")
    atomic_write(path, private, mode=PRIVATE_FILE)
    atomic_write(path + ".pub", public + "\n", mode=PUBLIC_FILE)
    return path, public
