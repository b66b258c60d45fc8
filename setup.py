"""Package list only (everything else is in pyproject.toml): each folder under drivers/
with an __init__.py becomes machine.drivers.<name>, so adding a driver needs no list edit."""
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def packages():
    out = ["machine", "machine.cli", "machine.provision", "machine.drivers", "machine.bootstrap", "machine.templates"]
    drivers = os.path.join(HERE, "drivers")
    for root, dirs, files in sorted(os.walk(drivers)):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        if root != drivers and "__init__.py" in files:
            out.append("machine.drivers." + os.path.relpath(root, drivers).replace(os.sep, "."))
    return out


setup(packages=packages())
