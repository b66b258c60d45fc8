"""boto3 sessions and EC2 clients for the aws driver (boto3 is imported here, inside functions).

Credentials: typed keys (the config's secret settings) when given, else boto3's own chain
(env, --aws-profile / AWS_PROFILE, shared files, SSO, instance role), read at use, never copied.
Retries: botocore's "standard" mode (exponential backoff with jitter on throttling and 5xx),
`--aws-retries` of them.

`HOOKS` lets a caller observe or instrument every client this module makes (the bench counts
API calls with it; the tests inject faults with botocore `before-call` handlers):
    HOOKS.append(("before-call.ec2.RunInstances", handler))
"""
from __future__ import annotations

from typing import Callable

from ...errors import UsageError
from .options import DEFAULT_REGION

#: (event name, handler) registered on every client made from now on
HOOKS: list[tuple[str, Callable]] = []

USER_AGENT = "machine-aws-driver"
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60



def endpoint_of(config) -> str | None:
    url = (config.endpoint_url or "").strip()
    if not url:
        return None
    if "://" not in url:  # docker-machine took a bare host name too
        url = ("http://" if config.insecure_transport else "https://") + url
    return url


_loader = None


def _botocore_session():
    """A fresh botocore session sharing one model loader (parsing EC2's model once per process)."""
    global _loader
    import botocore.session

    bs = botocore.session.get_session()
    if _loader is None:
        _loader = bs.get_component("data_loader")
    else:
        bs.register_component("data_loader", _loader)
    return bs


def session(config):
    """A boto3 Session for the config's credentials (typed keys, else boto3's chain, read now)."""
    import boto3
    from botocore import exceptions as be

    kw = {}
    if config.access_key or config.secret_key:
        if not (config.access_key and config.secret_key):
            raise UsageError("typed AWS keys need both --amazonec2-access-key and --amazonec2-secret-key",
                             "pass both, or neither (boto3's chain is used then)")
        kw.update(aws_access_key_id=config.access_key, aws_secret_access_key=config.secret_key,
                  aws_session_token=config.session_token or None)
    try:
        return boto3.session.Session(profile_name=config.profile or None, botocore_session=_botocore_session(), **kw)
    except be.ProfileNotFound as e:
        raise UsageError(f"AWS profile {config.profile!r} not found ({e})",
                         "check --aws-profile / AWS_PROFILE and ~/.aws/config") from None


def region_of(config, sess=None) -> str:
    """The region to use: the flag (or AWS_DEFAULT_REGION), else the profile's, else us-east-1."""
    if config.region:
        return config.region
    try:
        return (sess or session(config)).region_name or DEFAULT_REGION
    except UsageError:
        raise
    except Exception:  # noqa: BLE001 - a broken profile file shows up at the first call instead
        return DEFAULT_REGION


def ec2(config, region: str | None = None, sess=None):
    """An EC2 client for the config (and region), with retries, timeouts and the HOOKS."""
    return client("ec2", config, region, sess)


def client(service: str, config, region: str | None = None, sess=None):
    from botocore.config import Config

    retries = int(config.retries if config.retries is not None else 5)
    cfg = Config(retries={"mode": "standard", "total_max_attempts": max(1, retries + 1)},
                 connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, user_agent_extra=USER_AGENT)
    sess = sess or session(config)
    c = sess.client(service, region_name=region or region_of(config, sess), endpoint_url=endpoint_of(config),
                               config=cfg, use_ssl=not config.insecure_transport)
    for event, handler in list(HOOKS):
        c.meta.events.register(event, handler)
    return c
