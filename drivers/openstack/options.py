"""The openstack driver's options: docker-machine's flag names, OS_* defaults, config.json keys.

Every docker-machine flag keeps its name and its config.json field so a loop written for
docker-machine runs unchanged and an old store stays readable. What docker-machine lacked
(clouds.yaml, server groups, boot from volume, tags, metadata) is added under new names.

Secrets: `--openstack-password` and the application-credential secret typed as flags are
kept by the API layer in the keyring or the machine's 0600 credentials file. Taken from
the environment (OS_PASSWORD) or clouds.yaml they are referenced, never copied: that is
why the two secret options have no `envvar` here, the connection reads those at use.
"""
from __future__ import annotations

import os

from ...driver import Option

DEFAULT_SSH_USER = "root"          # docker-machine's default
DEFAULT_SSH_PORT = 22
DEFAULT_ACTIVE_TIMEOUT = 200       # seconds, docker-machine's default
DEFAULT_IP_VERSION = 4
SERVER_GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
ENDPOINT_TYPES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin",
                  "public": "public", "internal": "internal", "admin": "admin"}

O = Option
OPTIONS: tuple[Option, ...] = (
    # --- where and who (docker-machine's names) ---------------------------------------
    O("auth-url", envvar="OS_AUTH_URL", key="AuthUrl", help="OpenStack authentication URL"),
    O("cloud", envvar="OS_CLOUD", key="Cloud",
      help="cloud name in clouds.yaml (openstacksdk's own config; flags given as well override it)"),
    O("insecure", type=bool, default=False, envvar="OS_INSECURE", key="Insecure",
      help="do not verify the API's TLS certificate"),
    O("cacert", envvar="OS_CACERT", key="CaCert", help="CA bundle to verify the API's certificate with"),
    O("domain-id", envvar="OS_DOMAIN_ID", key="DomainId", help="OpenStack domain ID (user and project)"),
    O("domain-name", envvar="OS_DOMAIN_NAME", key="DomainName", help="OpenStack domain name (user and project)"),
    O("user-id", envvar="OS_USER_ID", key="UserId", help="OpenStack user ID"),
    O("username", envvar="OS_USERNAME", key="Username", help="OpenStack username"),
    O("password", secret=True, key="Password",
      help="OpenStack password (default: OS_PASSWORD, read at use and never stored)"),
    O("tenant-name", envvar="OS_TENANT_NAME", key="TenantName",
      help="OpenStack tenant (project) name; OS_PROJECT_NAME works too"),
    O("tenant-id", envvar="OS_TENANT_ID", key="TenantId", help="OpenStack tenant (project) ID; OS_PROJECT_ID works too"),
    O("tenant-domain-name", envvar="OS_PROJECT_DOMAIN_NAME", key="TenantDomainName", help="project domain name"),
    O("tenant-domain-id", envvar="OS_PROJECT_DOMAIN_ID", key="TenantDomainId", help="project domain ID"),
    O("user-domain-name", envvar="OS_USER_DOMAIN_NAME", key="UserDomainName", help="user domain name"),
    O("user-domain-id", envvar="OS_USER_DOMAIN_ID", key="UserDomainId", help="user domain ID"),
    O("application-credential-id", envvar="OS_APPLICATION_CREDENTIAL_ID", key="ApplicationCredentialId",
      help="application credential ID"),
    O("application-credential-name", envvar="OS_APPLICATION_CREDENTIAL_NAME", key="ApplicationCredentialName",
      help="application credential name"),
    O("application-credential-secret", secret=True, key="ApplicationCredentialSecret",
      help="application credential secret (default: OS_APPLICATION_CREDENTIAL_SECRET, read at use)"),
    O("region", envvar="OS_REGION_NAME", key="Region", help="OpenStack region name"),
    O("endpoint-type", envvar="OS_ENDPOINT_TYPE", key="EndpointType",
      help="endpoint type: publicURL, internalURL or adminURL"),
    # --- what to create ----------------------------------------------------------------
    O("flavor-name", envvar="OS_FLAVOR_NAME", key="FlavorName", help="flavor name for the server"),
    O("flavor-id", envvar="OS_FLAVOR_ID", key="FlavorId", help="flavor ID for the server"),
    O("image-name", envvar="OS_IMAGE_NAME", key="ImageName", help="image name for the server"),
    O("image-id", envvar="OS_IMAGE_ID", key="ImageId", help="image ID for the server"),
    O("net-name", envvar="OS_NETWORK_NAME", key="NetworkName", help="network the server is connected to"),
    O("net-id", envvar="OS_NETWORK_ID", key="NetworkId", help="network ID the server is connected to"),
    O("sec-groups", envvar="OS_SECURITY_GROUPS", key="SecurityGroups",
      help="comma separated security groups (default: one is created with SSH, engine and swarm ports)"),
    O("floatingip-pool", envvar="OS_FLOATINGIP_POOL", key="FloatingIpPool",
      help="external network to allocate a floating IP from (released on rm)"),
    O("nova-network", type=bool, default=False, envvar="OS_NOVA_NETWORK", key="ComputeNetwork",
      help="nova-network (removed from OpenStack in Rocky; accepted for old scripts, refused)"),
    O("ip-version", type=int, default=DEFAULT_IP_VERSION, envvar="OS_IP_VERSION", key="IpVersion",
      help="IP version of the address used to reach the machine (4 or 6)"),
    O("keypair-name", envvar="OS_KEYPAIR_NAME", key="KeyPairName",
      help="existing key pair to use (needs --openstack-private-key-file)"),
    O("private-key-file", envvar="OS_PRIVATE_KEY_FILE", key="PrivateKeyFile",
      help="private key for SSH; without --openstack-keypair-name its public key is imported"),
    O("availability-zone", envvar="OS_AVAILABILITY_ZONE", key="AvailabilityZone", help="availability zone"),
    O("config-drive", type=bool, default=False, envvar="OS_CONFIG_DRIVE", key="ConfigDrive",
      help="attach a config drive to the server"),
    O("user-data-file", envvar="OS_USER_DATA_FILE", key="UserDataFile", help="file passed as user data"),
    O("active-timeout", type=int, default=DEFAULT_ACTIVE_TIMEOUT, envvar="OS_ACTIVE_TIMEOUT", key="ActiveTimeout",
      help="seconds to wait for the server to become ACTIVE"),
    O("ssh-user", default=DEFAULT_SSH_USER, envvar="OS_SSH_USER", key="SSHUser", help="SSH user"),
    O("ssh-port", type=int, default=DEFAULT_SSH_PORT, envvar="OS_SSH_PORT", key="SSHPort", help="SSH port"),
    # --- ours --------------------------------------------------------------------------
    O("server-group", key="ServerGroup",
      help="server group (name or ID) to place the server in; created with --openstack-server-group-policy "
           "if it does not exist"),
    O("server-group-policy", default="anti-affinity", key="ServerGroupPolicy", choices=SERVER_GROUP_POLICIES,
      help="policy of a server group that is created"),
    O("boot-from-volume", type=bool, default=False, key="BootFromVolume",
      help="boot from a new volume made from the image (deleted with the server)"),
    O("volume-size", type=int, default=0, key="VolumeSize", help="size in GiB of the boot volume"),
    O("volume-type", key="VolumeType", help="volume type of the boot volume"),
    O("tag", multiple=True, key="Tags", help="server tag (repeatable)"),
    O("metadata", multiple=True, key="Metadata", help="server metadata KEY=VALUE (repeatable)"),
)

# OS_* variables read as second choice for an option whose docker-machine variable is unset.
ENV_FALLBACKS = {
    "TenantName": ("OS_PROJECT_NAME",),
    "TenantId": ("OS_PROJECT_ID",),
    "EndpointType": ("OS_INTERFACE",),
}


def env_fallbacks(config: dict, environ=os.environ) -> None:
    for key, names in ENV_FALLBACKS.items():
        if config.get(key):
            continue
        for name in names:
            if environ.get(name):
                config[key] = environ[name]
                break


def split_list(value) -> list[str]:
    """`a,b , c` or ["a,b", "c"] -> ["a", "b", "c"] (docker-machine splits --openstack-sec-groups on commas)."""
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        out += [p.strip() for p in str(item).split(",") if p.strip()]
    return out


def parse_metadata(items) -> dict[str, str]:
    from ...errors import UsageError

    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --openstack-metadata {item!r}", "use KEY=VALUE")
        out[key.strip()] = value
    return out
