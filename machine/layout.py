"""Every file and folder name of the machine store, and the defaults shared across modules, once.

    STORE/certs/{ca.pem,ca-key.pem,cert.pem,key.pem}
    STORE/machines/NAME/{config.json,machine.json,id_*,server.pem,server-key.pem,ca.pem,cert.pem,
                         key.pem,known_hosts,credentials.json}
    STORE/cache/            images and downloads, by content hash
    STORE/drivers/DRIVER/   state a driver shares between its machines (e.g. qemu networks)
    STORE/.locks/           one lock file per machine, the store lock and named locks

docker-machine's names are kept so both tools can share one store.
"""
from __future__ import annotations

# store folders
MACHINES_DIR = "machines"
CERTS_DIR = "certs"
CACHE_DIR = "cache"
DRIVERS_DIR = "drivers"
LOCKS_DIR = ".locks"

# certificates (the same names in certs/ and in each machine folder)
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CLIENT_CERT = "cert.pem"
CLIENT_KEY = "key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
CLIENT_TLS_FILES = (CA_CERT, CLIENT_CERT, CLIENT_KEY)

# per machine
CONFIG_JSON = "config.json"        # docker-machine's fields only: both tools read and write it
MACHINE_JSON = "machine.json"      # ours alone (journal, phase, …): docker-machine never touches it
KNOWN_HOSTS = "known_hosts"
CREDENTIALS = "credentials.json"

# defaults used by more than one module
DEFAULT_ENGINE_PORT = 2376
DEFAULT_CERT_DAYS = 1095
DEFAULT_INSTALL_URL = "https://get.docker.com"
DEFAULT_TLS_KEY_TYPE = "ecdsa"
