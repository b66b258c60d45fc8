"""The google driver's typed configuration: docker-machine's flags and config.json keys, plus what it lacked.

docker-machine 0.16's `--google-*` flags keep their names (and `GOOGLE_*` variables);
GitLab's fork added accelerators, a service account and a maintenance policy, kept here
under its names. Added: labels, Spot, metadata, startup script / user data files, and
`--google-endpoint` for Compute-compatible or private endpoints.

Credentials only from google-auth's application default credentials
(GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, the metadata
server, workload identity federation); never stored.
"""
from __future__ import annotations

import os
import re

from ...driver import DriverConfig, setting
from ...errors import UsageError

DEFAULT_IMAGE = "projects/debian-cloud/global/images/family/debian-12"
DEFAULT_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_only",
                  "https://www.googleapis.com/auth/logging.write"]
NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
G_VM = "Instance"
G_NET = "Network"
G_AUTH = "Credentials and endpoints"


class GoogleConfig(DriverConfig):
    project: str = setting("Project", "", flag="project", env="GOOGLE_PROJECT",
        help="project ID (default: the application default credentials' project)")
    zone: str = setting("Zone", "us-central1-a", flag="zone", env="GOOGLE_ZONE", help="zone")
    endpoint: str = setting("Endpoint", "", flag="endpoint", env="GOOGLE_COMPUTE_ENDPOINT", group=G_AUTH,
        help="Compute API endpoint of a compatible or private service (default: compute.googleapis.com)")
    # ---- the instance ----------------------------------------------------------------------
    machine_type: str = setting("MachineType", "n1-standard-1", flag="machine-type", env="GOOGLE_MACHINE_TYPE",
        group=G_VM, help="machine type")
    machine_image: str = setting("MachineImage", DEFAULT_IMAGE, flag="machine-image", env="GOOGLE_MACHINE_IMAGE",
        group=G_VM, help="image: a family (projects/P/global/images/family/F or family/F), a name or a self link")
    ssh_user: str = setting("SSHUser", "docker-user", flag="username", env="GOOGLE_USERNAME", group=G_VM,
        help="SSH user (its key goes into the instance's ssh-keys metadata)")
    disk_size: int = setting("DiskSize", 10, flag="disk-size", env="GOOGLE_DISK_SIZE", min=10, max=65536, group=G_VM,
        help="boot disk size in GB")
    disk_type: str = setting("DiskType", "pd-standard", flag="disk-type", env="GOOGLE_DISK_TYPE", group=G_VM,
        help="boot disk type (pd-standard, pd-balanced, pd-ssd, …)")
    preemptible: bool = setting("Preemptible", False, flag="preemptible", env="GOOGLE_PREEMPTIBLE", group=G_VM,
        help="a preemptible instance")
    spot: bool = setting("Spot", False, flag="spot", env="GOOGLE_SPOT", group=G_VM,
        help="a Spot instance (stopped when preempted)")
    tags: list = setting("Tags", [], flag="tags", env="GOOGLE_TAGS", group=G_VM,
        help="network tags, comma-separated or repeated")
    labels: dict = setting("Labels", {}, flag="label", group=G_VM, help="label KEY=VALUE (repeatable)")
    scopes: list = setting("Scopes", DEFAULT_SCOPES, flag="scopes", env="GOOGLE_SCOPES", group=G_VM,
        help="service account scopes, comma-separated")
    service_account: str = setting("ServiceAccount", "default", flag="service-account", env="GOOGLE_SERVICE_ACCOUNT",
        group=G_VM, help="service account email the instance runs as ('default': the project's compute account)")
    accelerator: str = setting("Accelerator", "", flag="accelerator", env="GOOGLE_ACCELERATOR", group=G_VM,
        help="GPUs: type=nvidia-tesla-t4,count=1")
    maintenance_policy: str = setting("MaintenancePolicy", "", flag="maintenance-policy",
        env="GOOGLE_MAINTENANCE_POLICY", choices=("MIGRATE", "TERMINATE"), group=G_VM,
        help="on host maintenance (default MIGRATE; TERMINATE with GPUs, Spot or preemptible)")
    metadata: dict = setting("Metadata", {}, flag="metadata", group=G_VM, help="metadata KEY=VALUE (repeatable)")
    startup_script: str = setting("StartupScript", "", flag="startup-script", env="GOOGLE_STARTUP_SCRIPT", group=G_VM,
        help="file run at every boot (metadata startup-script)")
    user_data: str = setting("UserData", "", flag="user-data", env="GOOGLE_USER_DATA", group=G_VM,
        help="cloud-init file (metadata user-data)")
    timeout: int = setting("Timeout", 600, flag="timeout", env="GOOGLE_TIMEOUT", min=1, group=G_VM,
        help="seconds to wait for each operation")
    # ---- network ------------------------------------------------------------------------------
    network: str = setting("Network", "default", flag="network", env="GOOGLE_NETWORK", group=G_NET,
        help="VPC network")
    subnetwork: str = setting("Subnetwork", "", flag="subnetwork", env="GOOGLE_SUBNETWORK", group=G_NET,
        help="subnetwork in the zone's region")
    address: str = setting("Address", "", flag="address", env="GOOGLE_ADDRESS", group=G_NET,
        help="a reserved static external IP address for the instance")
    use_internal_ip: bool = setting("UseInternalIP", False, flag="use-internal-ip", env="GOOGLE_USE_INTERNAL_IP",
        group=G_NET, help="reach the instance by its internal address")
    use_internal_ip_only: bool = setting("UseInternalIPOnly", False, flag="use-internal-ip-only",
        env="GOOGLE_USE_INTERNAL_IP_ONLY", group=G_NET, help="give the instance no external address")
    open_ports: list = setting("OpenPorts", [], flag="open-port", env="GOOGLE_OPEN_PORT", group=G_NET,
        help="port (or PORT/udp) to open to the internet, repeatable")
    # ---- what create learned --------------------------------------------------------------------
    internal_ip: str = setting("InternalIPAddress", "")
    instance_id: str = setting("InstanceID", "")
    image_link: str = setting("ImageLink", "")

    def validate(self, driver_name: str) -> None:
        flag = f"--{driver_name}"
        if self.preemptible and self.spot:
            raise UsageError(f"{flag}-preemptible and {flag}-spot are two names for one thing", "keep one of them")
        if self.use_internal_ip_only:
            self.use_internal_ip = True
            if self.address:
                raise UsageError(f"{flag}-use-internal-ip-only leaves no place for {flag}-address", "drop one of them")
        for tag in self.tags:
            if not NAME_RE.match(tag):
                raise UsageError(f"invalid {flag}-tags item {tag!r}", "tags are lower-case letters, digits and '-'")
        for key in self.labels:
            if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", key):
                raise UsageError(f"invalid {flag}-label key {key!r}", "keys are lower-case letters, digits, '_' and '-'")
        if self.accelerator:
            parse_accelerator(self.accelerator)
        for path, what in ((self.startup_script, "startup-script"), (self.user_data, "user-data")):
            if path and not os.path.isfile(os.path.expanduser(path)):
                raise UsageError(f"{what} file {path} does not exist", f"check {flag}-{what}")
        for port in self.open_ports:
            num, _, proto = str(port).partition("/")
            if not num.isdigit() or not 1 <= int(num) <= 65535 or proto.lower() not in ("", "tcp", "udp"):
                raise UsageError(f"invalid {flag}-open-port {port!r}", "give PORT, PORT/tcp or PORT/udp")
        if not self.ssh_user or not re.match(r"^[a-z_][a-z0-9_-]*$", self.ssh_user) or self.ssh_user == "root":
            raise UsageError(f"invalid {flag}-username {self.ssh_user!r}", "give a lower-case login name other than root")
        if not re.match(r"^[a-z]+-[a-z]+\d+-[a-z]$", self.zone):
            raise UsageError(f"invalid {flag}-zone {self.zone!r}", "write a zone such as us-central1-a")

    @property
    def region(self) -> str:
        return self.zone.rsplit("-", 1)[0]


def parse_accelerator(text: str) -> tuple[str, int]:
    """`type=nvidia-tesla-t4,count=2` (GitLab's format) or `nvidia-tesla-t4[:2]` -> (type, count)."""
    kv = dict(p.split("=", 1) for p in text.split(",") if "=" in p)
    if kv:
        kind, count = kv.get("type", ""), kv.get("count", "1")
    else:
        kind, _, count = text.partition(":")
        count = count or "1"
    if not kind or not count.isdigit() or int(count) < 1:
        raise UsageError(f"invalid --google-accelerator {text!r}", "write type=nvidia-tesla-t4,count=1")
    return kind, int(count)


def image_path(image: str, project: str) -> tuple[str, str, bool]:
    """An image reference -> (project, name or family, is_family)."""
    s = image.strip()
    i = s.find("projects/")
    if i >= 0:
        s = s[i:]
        m = re.fullmatch(r"projects/([^/]+)/global/images/(family/)?([^/]+)", s)
        if not m:
            raise UsageError(f"invalid --google-machine-image {image!r}",
                             "write projects/P/global/images/family/F, projects/P/global/images/NAME or a self link")
        return m[1], m[3], bool(m[2])
    if s.startswith("family/"):
        return project, s[len("family/"):], True
    if "/" in s or not s:
        raise UsageError(f"invalid --google-machine-image {image!r}", "give an image name, family/F or a self link")
    return project, s, False
