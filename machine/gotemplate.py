"""A small subset of Go's text/template, enough for docker-machine's --format and -f.

Supported: literal text, {{.Field}}, {{.A.B}}, {{json .}}, {{prettyjson .A}}, {{upper .X}},
{{lower .X}}, {{title .X}}, {{split .X ","}}, {{join .List ","}}, {{index .Map "key"}}, and "table " prefixed
formats (header row, columns aligned like Go's tabwriter). Escapes \\t and \\n are
honoured in the format string as the docker CLI does.
"""
from __future__ import annotations

import json
import re
import shlex

from .errors import UsageError

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)


def _lookup(data, path: str):
    if path == ".":
        return data
    cur = data
    for part in path.lstrip(".").split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif hasattr(cur, part):
            cur = getattr(cur, part)
        else:
            raise UsageError(f"template: can't evaluate field {part}", "check the field name (case matters)")
    return cur


def _render_value(v) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_render_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_render_value(x)}" for k, x in sorted(v.items())) + "]"
    return str(v)


def _arg(token: str, data):
    if token.startswith("."):
        return _lookup(data, token)
    if token.startswith('"'):
        return json.loads(token)
    raise UsageError(f"template: unsupported argument {token!r}")


def _eval(expr: str, data) -> str:
    try:
        tokens = shlex.split(expr, posix=False)
    except ValueError as e:
        raise UsageError(f"template: {e}") from None
    if not tokens:
        return ""
    head = tokens[0]
    if head.startswith("."):
        if len(tokens) != 1:
            raise UsageError(f"template: unexpected {' '.join(tokens[1:])!r}")
        return _render_value(_lookup(data, head))
    args = [_arg(t, data) for t in tokens[1:]]
    if head == "json" and len(args) == 1:
        return json.dumps(args[0], separators=(",", ":"))
    if head == "prettyjson" and len(args) == 1:  # docker-machine's inspect: MarshalIndent with 4 spaces
        return json.dumps(args[0], indent=4)
    if head == "split" and len(args) == 2:
        return _render_value(str(args[0]).split(str(args[1])))
    if head == "title" and len(args) == 1:
        return str(args[0]).title()
    if head == "upper" and len(args) == 1:
        return str(args[0]).upper()
    if head == "lower" and len(args) == 1:
        return str(args[0]).lower()
    if head == "join" and len(args) == 2:
        return str(args[1]).join(str(x) for x in args[0])
    if head == "index" and len(args) == 2:
        try:
            return _render_value(args[0][args[1]])
        except (KeyError, IndexError, TypeError):
            return "<no value>"
    raise UsageError(f"template: function {head!r} not defined", "use .Field, json, prettyjson, upper, lower, title, split, join or index")


def compile_format(fmt: str):
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _ACTION.finditer(fmt):
        parts.append((False, fmt[pos:m.start()]))
        parts.append((True, m.group(1)))
        pos = m.end()
    parts.append((False, fmt[pos:]))
    if "{{" in "".join(t for is_action, t in parts if not is_action):
        raise UsageError(f"template: unclosed action in {fmt!r}")
    return parts


def render(fmt: str, data) -> str:
    return "".join(_eval(t, data) if is_action else t for is_action, t in compile_format(fmt))


def render_rows(fmt: str, rows: list, headers: dict | None = None) -> str:
    """Render one line per row; a 'table ' format gets a header and aligned columns."""
    if fmt.startswith("table"):
        body = fmt[5:].lstrip() or "{{.Name}}"
        header = re.sub(r"{{\s*\.([A-Za-z0-9_.]+)\s*}}",
                        lambda m: (headers or {}).get(m.group(1)) or _header(m.group(1)),
                        body.replace("\\t", "\t"))
        lines = [header] + [render(body, r) for r in rows]
        return tabwrite(lines)
    return "".join(render(fmt, r) + "\n" for r in rows)


def _header(field: str) -> str:
    name = field.split(".")[-1]
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper()


def tabwrite(lines: list[str], padding: int = 3) -> str:
    """Align tab-separated cells like Go's tabwriter (minwidth 0, padding 3)."""
    cells = [ln.split("\t") for ln in lines]
    ncols = max((len(c) for c in cells), default=0)
    widths = [0] * ncols
    for row in cells:
        for i, c in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(c))
    out = []
    for row in cells:
        parts = [c.ljust(widths[i] + padding) for i, c in enumerate(row[:-1])]
        out.append(("".join(parts) + row[-1]).rstrip() if row else "")
    return "\n".join(out) + ("\n" if out else "")
