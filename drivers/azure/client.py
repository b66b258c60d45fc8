"""azure-identity credential and the three management clients, built on first use.

Imported only by driver methods that talk to Azure: azure.mgmt.compute alone takes ~430 ms.
"""
from __future__ import annotations

from .errors import translate
from .options import CLOUDS, AzureConfig

#: retries of throttled (429) and failed (5xx) calls; azure-core's default of 10 hides an outage for minutes
RETRY_TOTAL = 3


def quiet_sdk_logging() -> None:
    """azure-identity logs a multi-line WARNING for every failed chain; with no logging set up Python
    prints it on stderr. The driver reports the failure as one line; --debug logging still sees it."""
    import logging

    azure_logger = logging.getLogger("azure")
    if not any(isinstance(h, logging.NullHandler) for h in azure_logger.handlers):
        azure_logger.addHandler(logging.NullHandler())


def credential(config: AzureConfig):
    """A typed service-principal secret, else azure-identity's default chain (never stored)."""
    quiet_sdk_logging()
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    authority = config.authority()
    kw: dict = {"authority": authority}
    if authority not in {a for _, a in CLOUDS.values() if a}:
        # A sovereign, private or test authority: no instance discovery against the public cloud.
        kw["disable_instance_discovery"] = True
    if config.ca_bundle:
        kw["connection_verify"] = config.ca_bundle
    if config.client_secret:
        return ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret, **kw)
    return DefaultAzureCredential(**kw)


class Clients:
    """Lazily built resource, network and compute clients sharing one credential."""

    def __init__(self, config: AzureConfig):
        self.config = config
        self._cred = None
        self._clients: dict = {}

    @property
    def cred(self):
        if self._cred is None:
            with translate("set up the Azure credential"):
                self._cred = credential(self.config)
        return self._cred

    def scope(self) -> str:
        return self.config.arm_endpoint() + "/.default"

    def check_token(self) -> None:
        """Get a token now: bad or missing credentials fail here, before anything is created."""
        with translate("get an Azure token"):
            self.cred.get_token(self.scope())

    def _kw(self) -> dict:
        kw = {"base_url": self.config.arm_endpoint(), "credential_scopes": [self.scope()],
              "retry_total": RETRY_TOTAL}
        if self.config.ca_bundle:
            kw["connection_verify"] = self.config.ca_bundle
        return kw

    def _get(self, name: str, factory):
        if name not in self._clients:
            with translate("set up the Azure client"):
                self._clients[name] = factory(self.cred, self.config.subscription_id, **self._kw())
        return self._clients[name]

    @property
    def resource(self):
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._get("resource", ResourceManagementClient)

    @property
    def network(self):
        from azure.mgmt.network import NetworkManagementClient

        return self._get("network", NetworkManagementClient)

    @property
    def compute(self):
        from azure.mgmt.compute import ComputeManagementClient

        return self._get("compute", ComputeManagementClient)
