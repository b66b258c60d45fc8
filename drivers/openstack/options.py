"""The openstack driver's typed configuration: docker-machine's flag names, OS_* defaults, config.json keys.

Every docker-machine flag keeps its name and its config.json field so a loop written for
docker-machine runs unchanged and an old store stays readable. What docker-machine lacked
(clouds.yaml, server groups, boot from volume, tags, metadata) is added under new names.

Secrets: `--openstack-password` and the application-credential secret typed as flags are
`secret` settings: kept by the core in the keyring or the machine's 0600 credentials file. Taken from
the environment (OS_PASSWORD) or clouds.yaml they are referenced, never copied: that is
why the two secret options have no `envvar` here, the connection reads those at use.
"""
from __future__ import annotations

import os

from ...driver import Claims, DriverConfig, setting
from ...errors import UsageError

DEFAULT_SSH_USER = "root"          # docker-machine's default
DEFAULT_SSH_PORT = 22
DEFAULT_ACTIVE_TIMEOUT = 200       # seconds, docker-machine's default
DEFAULT_IP_VERSION = 4
SERVER_GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
ENDPOINT_TYPES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin",
                  "public": "public", "internal": "internal", "admin": "admin"}

class OpenStackConfig(DriverConfig):
    auth_url: str = setting("AuthUrl", "", flag="auth-url", env="OS_AUTH_URL",
        help="OpenStack authentication URL")
    cloud: str = setting("Cloud", "", flag="cloud", env="OS_CLOUD",
        help="cloud name in clouds.yaml (openstacksdk's own config; flags given as well override it)")
    insecure: bool = setting("Insecure", False, flag="insecure", env="OS_INSECURE",
        help="do not verify the API's TLS certificate")
    cacert: str = setting("CaCert", "", flag="cacert", env="OS_CACERT",
        help="CA bundle to verify the API's certificate with")
    domain_id: str = setting("DomainId", "", flag="domain-id", env="OS_DOMAIN_ID",
        help="OpenStack domain ID (user and project)")
    domain_name: str = setting("DomainName", "", flag="domain-name", env="OS_DOMAIN_NAME",
        help="OpenStack domain name (user and project)")
    user_id: str = setting("UserId", "", flag="user-id", env="OS_USER_ID",
        help="OpenStack user ID")
    username: str = setting("Username", "", flag="username", env="OS_USERNAME",
        help="OpenStack username")
    password: str = setting("Password", "", flag="password", secret=True,
        help="OpenStack password (default: OS_PASSWORD, read at use and never stored)")
    tenant_name: str = setting("TenantName", "", flag="tenant-name", env="OS_TENANT_NAME",
        help="OpenStack tenant (project) name; OS_PROJECT_NAME works too")
    tenant_id: str = setting("TenantId", "", flag="tenant-id", env="OS_TENANT_ID",
        help="OpenStack tenant (project) ID; OS_PROJECT_ID works too")
    tenant_domain_name: str = setting("TenantDomainName", "", flag="tenant-domain-name", env="OS_PROJECT_DOMAIN_NAME",
        help="project domain name")
    tenant_domain_id: str = setting("TenantDomainId", "", flag="tenant-domain-id", env="OS_PROJECT_DOMAIN_ID",
        help="project domain ID")
    user_domain_name: str = setting("UserDomainName", "", flag="user-domain-name", env="OS_USER_DOMAIN_NAME",
        help="user domain name")
    user_domain_id: str = setting("UserDomainId", "", flag="user-domain-id", env="OS_USER_DOMAIN_ID",
        help="user domain ID")
    application_credential_id: str = setting("ApplicationCredentialId", "", flag="application-credential-id", env="OS_APPLICATION_CREDENTIAL_ID",
        help="application credential ID")
    application_credential_name: str = setting("ApplicationCredentialName", "", flag="application-credential-name", env="OS_APPLICATION_CREDENTIAL_NAME",
        help="application credential name")
    application_credential_secret: str = setting("ApplicationCredentialSecret", "", flag="application-credential-secret", secret=True,
        help="application credential secret (default: OS_APPLICATION_CREDENTIAL_SECRET, read at use)")
    region: str = setting("Region", "", flag="region", env="OS_REGION_NAME",
        help="OpenStack region name")
    endpoint_type: str = setting("EndpointType", "", flag="endpoint-type", env="OS_ENDPOINT_TYPE",
        help="endpoint type: publicURL, internalURL or adminURL")
    flavor_name: str = setting("FlavorName", "", flag="flavor-name", env="OS_FLAVOR_NAME",
        help="flavor name for the server")
    flavor_id: str = setting("FlavorId", "", flag="flavor-id", env="OS_FLAVOR_ID",
        help="flavor ID for the server")
    image_name: str = setting("ImageName", "", flag="image-name", env="OS_IMAGE_NAME",
        help="image name for the server")
    image_id: str = setting("ImageId", "", flag="image-id", env="OS_IMAGE_ID",
        help="image ID for the server")
    net_name: str = setting("NetworkName", "", flag="net-name", env="OS_NETWORK_NAME",
        help="network the server is connected to")
    net_id: str = setting("NetworkId", "", flag="net-id", env="OS_NETWORK_ID",
        help="network ID the server is connected to")
    sec_groups: list = setting("SecurityGroups", [], flag="sec-groups", env="OS_SECURITY_GROUPS",
        help="comma separated security groups (default: one is created with SSH, engine and swarm ports)")
    floatingip_pool: str = setting("FloatingIpPool", "", flag="floatingip-pool", env="OS_FLOATINGIP_POOL",
        help="external network to allocate a floating IP from (released on rm)")
    nova_network: bool = setting("ComputeNetwork", False, flag="nova-network", env="OS_NOVA_NETWORK",
        help="nova-network (removed from OpenStack in Rocky; accepted for old scripts, refused)")
    ip_version: int = setting("IpVersion", DEFAULT_IP_VERSION, flag="ip-version", env="OS_IP_VERSION", choices=(4, 6),
        help="IP version of the address used to reach the machine (4 or 6)")
    keypair_name: str = setting("KeyPairName", "", flag="keypair-name", env="OS_KEYPAIR_NAME",
        help="existing key pair to use (needs --openstack-private-key-file)")
    private_key_file: str = setting("PrivateKeyFile", "", flag="private-key-file", env="OS_PRIVATE_KEY_FILE",
        help="private key for SSH; without --openstack-keypair-name its public key is imported")
    availability_zone: str = setting("AvailabilityZone", "", flag="availability-zone", env="OS_AVAILABILITY_ZONE",
        help="availability zone")
    config_drive: bool = setting("ConfigDrive", False, flag="config-drive", env="OS_CONFIG_DRIVE",
        help="attach a config drive to the server")
    user_data_file: str = setting("UserDataFile", "", flag="user-data-file", env="OS_USER_DATA_FILE",
        help="file passed as user data")
    active_timeout: int = setting("ActiveTimeout", DEFAULT_ACTIVE_TIMEOUT, flag="active-timeout", env="OS_ACTIVE_TIMEOUT", min=0,
        help="seconds to wait for the server to become ACTIVE")
    ssh_user: str = setting("SSHUser", DEFAULT_SSH_USER, flag="ssh-user", env="OS_SSH_USER",
        help="SSH user")
    ssh_port: int = setting("SSHPort", DEFAULT_SSH_PORT, flag="ssh-port", env="OS_SSH_PORT", min=1, max=65535,
        help="SSH port")
    server_group: str = setting("ServerGroup", "", flag="server-group",
        help="server group (name or ID) to place the server in; created with --openstack-server-group-policy "
           "if it does not exist")
    server_group_policy: str = setting("ServerGroupPolicy", "anti-affinity", flag="server-group-policy", choices=SERVER_GROUP_POLICIES,
        help="policy of a server group that is created")
    boot_from_volume: bool = setting("BootFromVolume", False, flag="boot-from-volume",
        help="boot from a new volume made from the image (deleted with the server)")
    volume_size: int = setting("VolumeSize", 0, flag="volume-size", min=0,
        help="size in GiB of the boot volume")
    volume_type: str = setting("VolumeType", "", flag="volume-type",
        help="volume type of the boot volume")
    tags: list = setting("Tags", [], flag="tag",
        help="server tag (repeatable)")
    metadata: dict = setting("Metadata", {}, flag="metadata",
        help="server metadata KEY=VALUE (repeatable)")
    # state the driver keeps (not user-settable)
    machine_id: str = setting("MachineId", "")
    security_group_id: str = setting("SecurityGroupId", "")
    server_group_id: str = setting("ServerGroupId", "")
    floating_ip_pool_id: str = setting("FloatingIpPoolId", "")
    floating_ip: str = setting("FloatingIp", "")
    private_ip_address: str = setting("PrivateIPAddress", "")
    existing_key: bool = setting("ExistingKey", False)

    def validate(self, driver_name: str) -> None:
        """docker-machine's checks on the flags, plus ours; OS_* second choices filled in."""
        env_fallbacks(self)
        for a, b, what, flag in ((self.flavor_name, self.flavor_id, "flavor", "flavor"),
                                 (self.image_name, self.image_id, "image", "image"),
                                 (self.net_name, self.net_id, "network", "net")):
            if a and b:
                raise UsageError(f"either {what} name or {what} id, not both",
                                 f"drop --openstack-{flag}-name or --openstack-{flag}-id")
        if not (self.flavor_name or self.flavor_id):
            raise UsageError("a flavor is required", "pass --openstack-flavor-name or --openstack-flavor-id")
        if not (self.image_name or self.image_id):
            raise UsageError("an image is required", "pass --openstack-image-name or --openstack-image-id")
        if self.endpoint_type and self.endpoint_type not in ENDPOINT_TYPES:
            raise UsageError(f"invalid --openstack-endpoint-type {self.endpoint_type!r}",
                             "use publicURL, internalURL or adminURL")
        if self.nova_network:
            raise UsageError("nova-network is not supported (OpenStack removed it in Rocky)",
                             "drop --openstack-nova-network; Neutron is used")
        if self.keypair_name and not self.private_key_file:
            raise UsageError("--openstack-keypair-name needs the matching private key",
                             "pass --openstack-private-key-file")
        if self.private_key_file and not os.path.isfile(os.path.expanduser(self.private_key_file)):
            raise UsageError(f"private key file {self.private_key_file} does not exist",
                             "pass the path of an existing key to --openstack-private-key-file")
        if self.user_data_file and not os.path.isfile(os.path.expanduser(self.user_data_file)):
            raise UsageError(f"user data file {self.user_data_file} does not exist",
                             "check --openstack-user-data-file")

    def claims(self) -> Claims:
        return Claims()


# OS_* variables read as second choice for an option whose docker-machine variable is unset.
ENV_FALLBACKS = {
    "tenant_name": ("OS_PROJECT_NAME",),
    "tenant_id": ("OS_PROJECT_ID",),
    "endpoint_type": ("OS_INTERFACE",),
}


def env_fallbacks(config, environ=os.environ) -> None:
    for field_name, names in ENV_FALLBACKS.items():
        if getattr(config, field_name):
            continue
        for name in names:
            if environ.get(name):
                setattr(config, field_name, environ[name])
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
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --openstack-metadata {item!r}", "use KEY=VALUE")
        out[key.strip()] = value
    return out
