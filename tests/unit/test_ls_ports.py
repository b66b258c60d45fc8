"""`ls` says where a local VM's published ports are reachable (issue 15): a PORTS column appears
when a listed machine forwards container ports to the host, and only then."""
from __future__ import annotations

import json

from fakes import FakeDriver, fake_driver  # noqa: F401  (the fixture)

from machine.driver import register_driver

FORWARDS = [{"proto": "tcp", "host_port": 18080, "guest_port": 8080, "containers": ["web"]},
            {"proto": "udp", "host_port": 5353, "guest_port": 5353, "containers": ["dns"]}]


class ForwardingDriver(FakeDriver):
    """A local-VM-like driver whose port agent forwards two container ports."""

    name = "fwdfake"

    def published_ports(self) -> list[dict]:
        return FORWARDS


def test_ports_column_only_when_a_machine_forwards(cli, fake_driver):
    assert cli("create", "-d", "fake", "plain").code == 0
    table = cli("ls").out.splitlines()
    assert "PORTS" not in table[0]  # a store without forwards keeps docker-machine's columns

    register_driver("fwdfake", ForwardingDriver)
    try:
        assert cli("create", "-d", "fwdfake", "vm1").code == 0
        r = cli("ls")
        assert r.code == 0, r.err
        header, *rows = r.out.splitlines()
        assert header.split()[-1] == "PORTS"
        vm1 = next(line for line in rows if line.startswith("vm1"))
        assert vm1.endswith("127.0.0.1:18080->8080/tcp, 127.0.0.1:5353->5353/udp"), vm1
        plain = next(line for line in rows if line.startswith("plain"))
        assert "->" not in plain
        assert cli("ls", "--format", "{{.Name}} {{.Ports}}").out.splitlines() == [
            "plain ", "vm1 127.0.0.1:18080->8080/tcp, 127.0.0.1:5353->5353/udp"]
        data = {row["Name"]: row["Ports"] for row in json.loads(cli("ls", "--format", "json").out)}
        assert data == {"plain": "", "vm1": "127.0.0.1:18080->8080/tcp, 127.0.0.1:5353->5353/udp"}
    finally:
        register_driver("fwdfake", None)
