"""pytest fixtures for the aws driver's tests. Import them into a test module:

    from aws.fixtures import moto, aws_env, make_driver  # noqa: F401
"""
from __future__ import annotations

import pytest

from .motoserver import REGION, UBUNTU_AMI, MotoServer


@pytest.fixture(scope="session")
def moto_server():
    srv = MotoServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def moto(moto_server, aws_env):
    """The session's moto server, reset before the test; the driver's client hooks cleared after."""
    from machine.drivers.aws import client

    moto_server.reset()
    yield moto_server
    client.HOOKS.clear()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Credentials for moto through boto3's own chain (env); no real profile or metadata service."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_AMI", "AWS_ZONE", "AWS_VPC_ID", "AWS_SUBNET_ID",
                "AWS_SECURITY_GROUP", "AWS_INSTANCE_TYPE", "AWS_TAGS", "AWS_SSH_USER", "AWS_SSH_KEYPATH",
                "AWS_KEYPAIR_NAME", "AWS_USERDATA", "AWS_ROOT_SIZE", "AWS_VOLUME_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def fast(driver):
    """Shorten the driver's waits for moto (which answers at once)."""
    driver.poll_interval = 0.02
    driver.pending_grace = 0.3
    driver.terminate_timeout = 10
    return driver


@pytest.fixture
def make_driver(moto, tmp_path):
    """make_driver(name, **options) -> an AWSDriver on moto, in a scratch context (no store)."""
    from machine.driver import DriverContext
    from machine.drivers.aws import AWSDriver, AWSConfig

    def make(name="m1", ctx=None, **options):
        options.setdefault("endpoint_url", moto.url)
        options.setdefault("ami", UBUNTU_AMI)
        cfg = AWSConfig.from_options(options, driver_name="aws", machine_name=name)
        mdir = tmp_path / "machines" / name
        mdir.mkdir(parents=True, exist_ok=True)
        ctx = ctx or DriverContext.scratch(name, mdir, root=tmp_path / "scratch")
        return fast(AWSDriver(cfg, ctx))

    return make
