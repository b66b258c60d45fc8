"""`machine audit`'s checks as data: engine/containers/images/host facts -> findings."""
from __future__ import annotations

from machine.audit import FAIL, PASS, WARN, HostFacts, audit, worst

CLEAN_INFO = {"LiveRestoreEnabled": True, "SecurityOptions": ["name=apparmor", "name=seccomp", "name=userns"],
              "LoggingDriver": "json-file"}
CLEAN_CONTAINER = {"Name": "/web", "Config": {"User": "1000", "Env": ["PATH=/bin", "MODE=prod"]},
                   "HostConfig": {"Privileged": False, "Memory": 268435456, "NanoCpus": 500000000}}
BAD_CONTAINER = {"Name": "/bad", "Config": {"User": "", "Env": ["DB_PASSWORD=hunter2", "HOME=/root"]},
                 "HostConfig": {"Privileged": True, "Memory": 0, "NanoCpus": 0}}
REGISTRY_IMAGE = {"RepoTags": ["nginx:1"], "RepoDigests": ["nginx@sha256:abc"]}
LOCAL_IMAGE = {"RepoTags": ["busybox:local"], "RepoDigests": []}


def results(findings):
    return {f.check: f.result for f in findings}


def test_a_clean_host_passes_everything():
    f = audit(CLEAN_INFO, [CLEAN_CONTAINER], [REGISTRY_IMAGE], HostFacts(pending_updates=0), tls_verified=True,
              content_trust=True)
    assert set(results(f).values()) == {PASS} and worst(f) == PASS


def test_a_privileged_root_container_without_limits_is_flagged_exactly():
    f = results(audit(CLEAN_INFO, [CLEAN_CONTAINER, BAD_CONTAINER], [REGISTRY_IMAGE], HostFacts(pending_updates=0),
                      tls_verified=True, content_trust=True))
    assert {k for k, v in f.items() if v != PASS} == {"non-root", "privileged", "memory-limits", "cpu-limits",
                                                      "secrets-in-env"}
    assert f["non-root"] == f["privileged"] == f["secrets-in-env"] == FAIL
    assert f["memory-limits"] == f["cpu-limits"] == WARN


def test_engine_and_host_findings():
    f = results(audit({"SecurityOptions": [], "LoggingDriver": "none"}, [], [LOCAL_IMAGE],
                      HostFacts(plain_tcp_listeners=["0.0.0.0:2375"], pending_updates=3), tls_verified=True,
                      content_trust=False))
    assert f == {"engine-tls": FAIL, "live-restore": WARN, "userns-or-rootless": WARN, "monitoring": WARN,
                 "host-updates": WARN, "containers": PASS, "image-provenance": WARN, "content-trust": WARN}


def test_secret_detection_names():
    from machine.audit import check_containers

    env = ["AWS_SECRET_ACCESS_KEY=x", "GITHUB_TOKEN=y", "API_KEY=z", "PASSWD=w", "KEYBOARD=us", "TOKEN_URL="]
    c = {"Name": "/s", "Config": {"User": "app", "Env": env}, "HostConfig": {"Memory": 1, "CpuQuota": 1}}
    detail = {x.check: x.detail for x in check_containers([c])}["secrets-in-env"]
    assert "AWS_SECRET_ACCESS_KEY" in detail and "GITHUB_TOKEN" in detail and "API_KEY" in detail
    assert "PASSWD" in detail and "KEYBOARD" not in detail and "TOKEN_URL" not in detail  # empty value
