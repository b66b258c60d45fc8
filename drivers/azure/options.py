"""The azure driver's typed configuration: docker-machine's flags and config.json keys, plus what it lacked.

docker-machine 0.16's `--azure-*` flags keep their names (and `AZURE_*` variables) so
existing loops run unchanged; `--azure-dns` became `--azure-dns-label` (the old spelling is
a hidden alias). Added: zones, spot with a max price, tags, a managed-disk type, a tenant,
and the endpoints of sovereign or Azure-compatible clouds (`--azure-endpoint`,
`--azure-authority-host`, `--azure-ca-bundle`).

Credentials come from azure-identity's chain (environment, workload identity, managed
identity, Azure CLI login) and are never stored. A client secret typed as
`--azure-client-secret` is a `secret` setting: the core keeps it in the keyring or the
machine's 0600 credentials file, never in config.json; AZURE_CLIENT_SECRET in the
environment is read by azure-identity at use and never copied.
"""
from __future__ import annotations

import ipaddress
import os
import re

from ...driver import DriverConfig, setting
from ...errors import UsageError

#: Azure clouds by docker-machine's --azure-environment names: (Resource Manager URL, Entra ID authority host)
CLOUDS = {
    "AzurePublicCloud": ("https://management.azure.com", "https://login.microsoftonline.com"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
    "AzureUSGovernmentCloud": ("https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
    "AzureGermanCloud": ("", ""),   # closed by Microsoft in 2021: refused with a hint
}
DISK_TYPES = ("Standard_LRS", "StandardSSD_LRS", "Premium_LRS", "StandardSSD_ZRS", "Premium_ZRS", "PremiumV2_LRS")
DEFAULT_IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest"
DEFAULT_SIZE = "Standard_D2s_v3"
DEFAULT_TIMEOUT = 900
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$|^[A-Za-z0-9]$")
G_NET = "Network"
G_AUTH = "Credentials and endpoints"
G_VM = "Virtual machine"


class AzureConfig(DriverConfig):
    # ---- where -------------------------------------------------------------------------
    subscription_id: str = setting("SubscriptionID", "", flag="subscription-id", env="AZURE_SUBSCRIPTION_ID",
        help="Azure subscription ID (required)")
    resource_group: str = setting("ResourceGroup", "docker-machine", flag="resource-group", env="AZURE_RESOURCE_GROUP",
        help="resource group (created when missing, and removed with the last machine in it)")
    location: str = setting("Location", "westus", flag="location", env="AZURE_LOCATION",
        help="Azure region")
    environment: str = setting("Environment", "AzurePublicCloud", flag="environment", env="AZURE_ENVIRONMENT",
        choices=tuple(CLOUDS), group=G_AUTH, help="Azure cloud")
    # ---- credentials and endpoints ------------------------------------------------------
    client_id: str = setting("ClientID", "", flag="client-id", env="AZURE_CLIENT_ID", group=G_AUTH,
        help="service principal (application) ID, used with --azure-client-secret")
    client_secret: str = setting("ClientSecret", "", flag="client-secret", secret=True, group=G_AUTH,
        help="service principal secret (kept in the keyring or a 0600 file, never in config.json; "
             "AZURE_CLIENT_SECRET in the environment is read at use instead)")
    tenant_id: str = setting("TenantID", "", flag="tenant-id", env="AZURE_TENANT_ID", group=G_AUTH,
        help="Entra ID tenant of the service principal")
    endpoint: str = setting("Endpoint", "", flag="endpoint", env="AZURE_RESOURCE_MANAGER_ENDPOINT", group=G_AUTH,
        help="Resource Manager URL of a sovereign or Azure-compatible cloud (default: the environment's)")
    authority_host: str = setting("AuthorityHost", "", flag="authority-host", env="AZURE_AUTHORITY_HOST", group=G_AUTH,
        help="Entra ID authority host (default: the environment's)")
    ca_bundle: str = setting("CABundle", "", flag="ca-bundle", env="AZURE_CA_BUNDLE", group=G_AUTH,
        help="CA bundle to verify the endpoints' TLS certificates with (private clouds)")
    # ---- the VM --------------------------------------------------------------------------
    size: str = setting("Size", DEFAULT_SIZE, flag="size", env="AZURE_SIZE", group=G_VM,
        help="VM size")
    image: str = setting("Image", DEFAULT_IMAGE, flag="image", env="AZURE_IMAGE", group=G_VM,
        help="image: publisher:offer:sku:version URN, or the resource ID of a managed or gallery image")
    ssh_user: str = setting("SSHUser", "docker-user", flag="ssh-user", env="AZURE_SSH_USER", group=G_VM,
        help="admin user created on the VM (Azure refuses root)")
    docker_port: int = setting("DockerPort", 2376, flag="docker-port", env="AZURE_DOCKER_PORT", min=1, max=65535,
        group=G_VM, help="port of the Docker engine (opened in the security group)")
    availability_set: str = setting("AvailabilitySet", "", flag="availability-set", env="AZURE_AVAILABILITY_SET",
        group=G_VM, help="availability set to place the VM in (created when missing)")
    fault_domain_count: int = setting("FaultCount", 2, flag="fault-domain-count", env="AZURE_FAULT_DOMAIN_COUNT",
        min=1, max=3, group=G_VM, help="fault domains of a created availability set")
    update_domain_count: int = setting("UpdateCount", 5, flag="update-domain-count", env="AZURE_UPDATE_DOMAIN_COUNT",
        min=1, max=20, group=G_VM, help="update domains of a created availability set")
    zone: str = setting("Zone", "", flag="zone", env="AZURE_ZONE", choices=("1", "2", "3"), group=G_VM,
        help="availability zone (not with --azure-availability-set)")
    managed_disks: bool = setting("ManagedDisks", True, flag="managed-disks", env="AZURE_MANAGED_DISKS", group=G_VM,
        help="accepted for docker-machine scripts; disks are always managed")
    disk_size: int = setting("DiskSize", 30, flag="disk-size", env="AZURE_DISK_SIZE", min=1, max=4095, group=G_VM,
        help="OS disk size in GiB")
    storage_type: str = setting("StorageType", "Standard_LRS", flag="storage-type", env="AZURE_STORAGE_TYPE",
        choices=DISK_TYPES, group=G_VM, help="managed OS disk type")
    custom_data_file: str = setting("CustomDataFile", "", flag="custom-data", env="AZURE_CUSTOM_DATA_FILE",
        group=G_VM, help="file passed to the VM as custom data (cloud-init)")
    spot: bool = setting("Spot", False, flag="spot", env="AZURE_SPOT", group=G_VM,
        help="a Spot VM (deallocated on eviction)")
    max_price: float = setting("MaxPrice", -1.0, flag="max-price", env="AZURE_MAX_PRICE", min=-1, group=G_VM,
        help="Spot: highest price per hour in US dollars (-1: up to the pay-as-you-go price)")
    tags: dict = setting("Tags", {}, flag="tag", group=G_VM,
        help="tag KEY=VALUE on every resource created (repeatable)")
    timeout: int = setting("Timeout", DEFAULT_TIMEOUT, flag="timeout", env="AZURE_TIMEOUT", min=1, group=G_VM,
        help="seconds to wait for each long-running operation")
    # ---- network -------------------------------------------------------------------------
    vnet: str = setting("VirtualNetwork", "docker-machine-vnet", flag="vnet", env="AZURE_VNET", group=G_NET,
        help="virtual network, [resource-group:]name (created when missing)")
    subnet: str = setting("SubnetName", "docker-machine", flag="subnet", env="AZURE_SUBNET", group=G_NET,
        help="subnet in the virtual network (created when missing)")
    subnet_prefix: str = setting("SubnetPrefix", "192.168.0.0/16", flag="subnet-prefix", env="AZURE_SUBNET_PREFIX",
        group=G_NET, help="address range of a created subnet (and of its network)")
    open_ports: list = setting("OpenPorts", [], flag="open-port", group=G_NET,
        help="port (or PORT/udp) to open to the internet, repeatable")
    private_ip_address: str = setting("PrivateIPAddr", "", flag="private-ip-address", group=G_NET,
        help="static private address for the VM")
    use_private_ip: bool = setting("UsePrivateIP", False, flag="use-private-ip", group=G_NET,
        help="reach the VM by its private address")
    no_public_ip: bool = setting("NoPublicIP", False, flag="no-public-ip", group=G_NET,
        help="create no public address (implies --azure-use-private-ip)")
    static_public_ip: bool = setting("StaticPublicIP", False, flag="static-public-ip", group=G_NET,
        help="a static public address (kept across stop/start)")
    dns_label: str = setting("DNSLabel", "", flag="dns-label", alias="--azure-dns", env="AZURE_DNS_LABEL",
        group=G_NET, help="DNS label of the public address")
    # ---- what create learned (not user-settable) --------------------------------------------
    private_address: str = setting("PrivateIPAddress", "")
    vm_id: str = setting("VMID", "")

    def validate(self, driver_name: str) -> None:
        flag = f"--{driver_name}"
        if not self.subscription_id:
            raise UsageError("an Azure subscription is required",
                             f"pass {flag}-subscription-id or set AZURE_SUBSCRIPTION_ID")
        if self.environment == "AzureGermanCloud" and not self.endpoint:
            raise UsageError("Azure Germany was closed in 2021",
                             f"use AzurePublicCloud (germanywestcentral), or give {flag}-endpoint")
        for value, what in ((self.resource_group, "resource-group"), (self.subnet, "subnet")):
            if not value or not NAME_RE.match(value):
                raise UsageError(f"invalid {flag}-{what} {value!r}", "use letters, digits, '-', '_' and '.'")
        rg, _, vnet = self.vnet.rpartition(":")
        if not vnet or not NAME_RE.match(vnet) or (rg and not NAME_RE.match(rg)):
            raise UsageError(f"invalid {flag}-vnet {self.vnet!r}", "write NAME or RESOURCE-GROUP:NAME")
        try:
            ipaddress.ip_network(self.subnet_prefix)
        except ValueError:
            raise UsageError(f"invalid {flag}-subnet-prefix {self.subnet_prefix!r}",
                             "give a CIDR range such as 192.168.0.0/16") from None
        if self.private_ip_address:
            try:
                ok = ipaddress.ip_address(self.private_ip_address) in ipaddress.ip_network(self.subnet_prefix)
            except ValueError:
                ok = False
            if not ok:
                raise UsageError(f"invalid {flag}-private-ip-address {self.private_ip_address!r}",
                                 f"give an address inside {self.subnet_prefix}")
        if self.ssh_user in ("root", "admin", "administrator", "") or not re.match(r"^[a-z_][a-z0-9_-]*$", self.ssh_user):
            raise UsageError(f"invalid {flag}-ssh-user {self.ssh_user!r}",
                             "Azure refuses root and admin; give a lower-case login name")
        if self.zone and self.availability_set:
            raise UsageError("a VM is in an availability zone or an availability set, not both",
                             f"drop {flag}-zone or {flag}-availability-set")
        if self.max_price != -1.0 and not self.spot:
            raise UsageError(f"{flag}-max-price is for Spot VMs", f"add {flag}-spot")
        if self.max_price not in (-1.0,) and self.max_price <= 0:
            raise UsageError(f"invalid {flag}-max-price {self.max_price:g}", "give a price above 0, or -1")
        if self.no_public_ip:
            self.use_private_ip = True
            if self.static_public_ip or self.dns_label:
                raise UsageError(f"{flag}-no-public-ip leaves nothing for {flag}-static-public-ip/{flag}-dns-label",
                                 "drop one of them")
        if self.client_secret and not (self.client_id and self.tenant_id):
            raise UsageError(f"{flag}-client-secret needs the application and its tenant",
                             f"pass {flag}-client-id and {flag}-tenant-id (or AZURE_CLIENT_ID/AZURE_TENANT_ID)")
        for port in self.open_ports:
            num, _, proto = str(port).partition("/")
            if not num.isdigit() or not 1 <= int(num) <= 65535 or proto.lower() not in ("", "tcp", "udp"):
                raise UsageError(f"invalid {flag}-open-port {port!r}", "give PORT, PORT/tcp or PORT/udp")
        if self.custom_data_file and not os.path.isfile(os.path.expanduser(self.custom_data_file)):
            raise UsageError(f"custom data file {self.custom_data_file} does not exist", f"check {flag}-custom-data")
        parse_image(self.image)   # raises UsageError

    # ---- derived ----------------------------------------------------------------------------
    def arm_endpoint(self) -> str:
        return (self.endpoint or CLOUDS[self.environment][0]).rstrip("/")

    def authority(self) -> str:
        return (self.authority_host or CLOUDS[self.environment][1]).rstrip("/")

    def vnet_group_and_name(self) -> tuple[str, str]:
        rg, _, name = self.vnet.rpartition(":")
        return rg or self.resource_group, name


def parse_image(image: str) -> dict:
    """A URN -> {publisher, offer, sku, version}; a resource ID -> {id}; else UsageError."""
    if image.startswith("/"):
        if "/providers/microsoft.compute/" not in image.lower():
            raise UsageError(f"invalid --azure-image {image!r}", "give the ID of a Microsoft.Compute image")
        return {"id": image}
    parts = image.split(":")
    if len(parts) != 4 or not all(parts):
        raise UsageError(f"invalid --azure-image {image!r}",
                         "write publisher:offer:sku:version (version may be latest) or a resource ID")
    return dict(zip(("publisher", "offer", "sku", "version"), parts))
