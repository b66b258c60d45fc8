"""Drivers shipped with Machine, one package each (installed as machine.drivers.*)."""
