"""Test-only ML2 mechanism driver for the real tier's stack: binds every port, no dataplane.

Neutron needs a mechanism driver that binds a port before Nova declares a server ACTIVE;
this stack runs no agents, so this one binds every segment it is offered (VIF type ovs).
stack.py installs it with an entry point under neutron.ml2.mechanism_drivers.
"""
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class AlwaysBindMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True}, status="ACTIVE")
            return
