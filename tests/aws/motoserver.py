"""moto's EC2 on 127.0.0.1, started by the tests themselves, with a gate to hold a call in flight.

    srv = MotoServer().start()          # http://127.0.0.1:PORT, real boto3 over HTTP
    srv.reset()                         # POST /moto-api/reset (between tests)
    with srv.hold("RunInstances") as gate:
        ...                             # gate.reached.wait(): the call is in flight, unanswered
        gate.release()                  # let moto answer it (the client may be gone by then)
    srv.leftovers()                     # what a test left in moto, by kind (empty: nothing)

The validation switches of TESTING.md are set before the server starts, so a bad AMI, instance
type or key pair fails as on AWS instead of passing silently.
"""
from __future__ import annotations

import io
import os
import threading
import urllib.parse
import urllib.request
from contextlib import contextmanager

VALIDATION = {
    "MOTO_ENABLE_AMI_VALIDATION": "true",
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
    "MOTO_ENABLE_KEYPAIR_VALIDATION": "true",
}
REGION = "us-east-1"
#: moto's own copy of Canonical's Ubuntu 16.04 image (owner 099720109477) in every region
UBUNTU_AMI = "ami-785db401"


class Gate:
    def __init__(self, action: str, skip: int = 0):
        self.action = action
        self.skip = skip
        self.reached = threading.Event()
        self._go = threading.Event()
        self.count = 0

    def release(self) -> None:
        self._go.set()


class _GateMiddleware:
    def __init__(self, app, server: "MotoServer"):
        self.app = app
        self.server = server

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = ""
        if body:
            action = (urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
        if action:
            with self.server._lock:
                self.server.calls.append(action)
                gate = self.server._gates.get(action)
            if gate is not None:
                gate.count += 1
            if gate is not None and gate.count > gate.skip:
                gate.reached.set()
                gate._go.wait(120)
        return self.app(environ, start_response)


class MotoServer:
    def __init__(self):
        self._server = None
        self._thread = None
        self._lock = threading.Lock()
        self._gates: dict[str, Gate] = {}
        #: every EC2 Action the server received, in order (tests may clear it)
        self.calls: list[str] = []
        self.url = ""

    def start(self) -> "MotoServer":
        os.environ.update(VALIDATION)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *a, **kw):
                pass

        app = _GateMiddleware(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for g in list(self._gates.values()):
            g.release()
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._server = None

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b""),
                               timeout=30).read()
        self.calls.clear()

    @contextmanager
    def hold(self, action: str, skip: int = 0):
        """Hold the calls of `action` after the first `skip` in flight until `release()`."""
        gate = Gate(action, skip)
        with self._lock:
            self._gates[action] = gate
        try:
            yield gate
        finally:
            with self._lock:
                self._gates.pop(action, None)
            gate.release()

    # ---- inspection --------------------------------------------------------------------
    def ec2(self, region: str = REGION):
        import boto3

        return boto3.client("ec2", region_name=region, endpoint_url=self.url, aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    def leftovers(self, region: str = REGION) -> dict[str, list]:
        """Every resource a machine could have left: instances not terminated, key pairs, groups
        other than `default`, addresses, volumes, open spot requests."""
        ec2 = self.ec2(region)
        out = {
            "instances": [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                          if i["State"]["Name"] != "terminated"],
            "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]],
            "security_groups": [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]
                                if g["GroupName"] != "default"],
            "addresses": [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]],
            "volumes": [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]],
            "spot_requests": [s["SpotInstanceRequestId"] for s in
                              ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
                              if s.get("State") in ("open", "active")],
        }
        return {k: v for k, v in out.items() if v}
