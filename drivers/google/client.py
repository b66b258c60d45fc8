"""google-auth application default credentials and the compute_v1 clients, built on first use.

google.cloud.compute_v1 takes ~2.4 s to import: only driver methods that talk to the API load it.
Operations are waited through ZoneOperations/GlobalOperations clients on the same endpoint
(`insert(...).result()` would poll through a client that ignores `api_endpoint`).
"""
from __future__ import annotations

from .errors import AuthFailed, translate
from .options import GoogleConfig

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class Clients:
    def __init__(self, config: GoogleConfig):
        self.config = config
        self._creds = None
        self._clients: dict = {}

    @property
    def creds(self):
        if self._creds is None:
            import google.auth

            with translate("find application default credentials"):
                creds, project = google.auth.default(scopes=SCOPES)
            if not self.config.project:
                if not project:
                    raise AuthFailed("no Google project given and the credentials name none",
                                     "pass --google-project or set GOOGLE_PROJECT")
                self.config.project = project
            self._creds = creds
        return self._creds

    def _get(self, name: str):
        if name not in self._clients:
            from google.cloud import compute_v1

            creds = self.creds
            opts = {"api_endpoint": self.config.endpoint} if self.config.endpoint else None
            with translate("set up the Compute client"):
                self._clients[name] = getattr(compute_v1, name)(credentials=creds, client_options=opts)
        return self._clients[name]

    def __getattr__(self, attr: str):
        # instances -> InstancesClient, zone_operations -> ZoneOperationsClient, …
        if attr.startswith("_"):
            raise AttributeError(attr)
        return self._get("".join(p.capitalize() for p in attr.split("_")) + "Client")
