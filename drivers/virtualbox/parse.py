"""Parsers for VBoxManage's documented output formats (the VirtualBox manual, chapter 8).

`showvminfo --machinereadable`: one `key=value` per line; keys are bare or double-quoted
(`"NIC 1 Rule(0)"`), values double-quoted strings (backslash-escaped) or bare numbers.
`list vms`: `"name" {uuid}` per line. `list hostonlyifs` / `list dhcpservers`: blocks of
`Key:   value` lines separated by blank lines. `guestproperty get`: `Value: …` or `No value set!`.
"""
from __future__ import annotations

import re

_LIST_VM = re.compile(r'^"(?P<name>(?:[^"\\]|\\.)*)"\s+\{(?P<uuid>[0-9a-fA-F-]{36})\}\s*$')


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
        return re.sub(r'\\(.)', r'\1', s)
    return s


def machinereadable(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith('"'):
            m = re.match(r'^"((?:[^"\\]|\\.)*)"=(.*)$', line)
            if not m:
                continue
            key, value = re.sub(r'\\(.)', r'\1', m.group(1)), m.group(2)
        else:
            key, sep, value = line.partition("=")
            if not sep:
                continue
        out[key] = _unquote(value)
    return out


def list_vms(text: str) -> dict[str, str]:
    """name -> uuid."""
    out = {}
    for line in text.splitlines():
        m = _LIST_VM.match(line.strip())
        if m:
            out[re.sub(r'\\(.)', r'\1', m.group("name"))] = m.group("uuid")
    return out


def blocks(text: str) -> list[dict[str, str]]:
    """`Key:   value` blocks separated by blank lines (list hostonlyifs, list dhcpservers, …)."""
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
                cur = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            cur[key.strip()] = value.strip()
    if cur:
        out.append(cur)
    return out


def guestproperty(text: str) -> str | None:
    t = text.strip()
    if not t or t.startswith("No value set"):
        return None
    if t.startswith("Value:"):
        return t[len("Value:"):].strip()
    return None


def created_uuid(text: str) -> str:
    """`createvm` prints `UUID: …`."""
    m = re.search(r"^UUID:\s*([0-9a-fA-F-]{36})\s*$", text, re.M)
    return m.group(1) if m else ""


def created_hostonlyif(text: str) -> str:
    """`hostonlyif create` prints `Interface 'vboxnet0' was successfully created`."""
    m = re.search(r"Interface '([^']+)' was successfully created", text)
    return m.group(1) if m else ""


def version_tuple(text: str) -> tuple[int, ...]:
    """'7.0.14r161095' -> (7, 0, 14)."""
    m = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in m.groups()) if m else ()
