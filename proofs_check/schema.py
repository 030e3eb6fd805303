"""The schema of the JSON report (``gla-verify run --json``, ``results.json`` of the appendix)
and its validation (``gla-verify appendix --from``).

A report is a JSON object with ``"schema": SCHEMA_VERSION``. :func:`validate_report`
walks it against :data:`REPORT` and raises :class:`~proofs_check.output.UsageError` naming
the *first* problem by its path, e.g. ``claims[2].evidence[0].passed: expected a boolean,
got null``. Keys not in the schema are allowed (later versions may add some); keys in it
are required.

Version history: 1 -- first versioned report (keys as written by :func:`report.build_report`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .output import EnvironmentFailure, UsageError

__all__ = ["REPORT", "SCHEMA_VERSION", "load_report", "validate_report"]

SCHEMA_VERSION = 1

# Type names: "str", "int", "number", "bool", "dict" (any object), "any"; a dict literal is a
# nested object schema whose keys are required, except keys written "?key" (checked when
# present: reports written before the typed criteria lack them); ("list", item) a list of
# items; ("enum", values); ("optional", t) also null.
_CRITERION = {"name": "str", "op": "str", "passed": "bool"}
_EVIDENCE = {
    "check": "str",
    "leg": "str",
    "kind": "str",
    "passed": "bool",
    "figures": "dict",
    "detail": "str",
    "counterexample": ("optional", "dict"),
    "seconds": "number",
    "?criteria": ("list", _CRITERION),
    "?key_figure": ("optional", {"name": "str", "op": "str"}),
}
_CLAIM = {
    "id": "str",
    "title": "str",
    "statement": "str",
    "source": "str",
    "status_note": "str",
    "settings": "dict",
    "status": ("enum", ("pass", "FAIL")),
    "legs": ("list", "str"),
    "seconds": "number",
    "evidence": ("list", _EVIDENCE),
    "?conditions": ("list", "str"),
    "?area": "str",
    "?origin": "str",
    "?verdict": ("enum", ("as-stated", "with-condition", "restricted", "false")),
    "?verdict_condition": "str",
}
REPORT = {
    "schema": "int",
    "tool": ("enum", ("gla-verify",)),
    "created": "str",
    "command": "str",
    "settings": {"seed": "int", "profile": "str"},
    "versions": "dict",
    "summary": {"claims": "int", "passed": "int", "failed": "int", "seconds": "number"},
    "claims": ("list", _CLAIM),
}

_JSON_NAMES = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


def _got(v) -> str:
    return _JSON_NAMES.get(type(v), type(v).__name__)


def _check(v, t, path: str) -> None:
    def bad(expected: str):
        raise UsageError(
            f"{path or 'report'}: expected {expected}, got {_got(v)}"
            + (f" {v!r}" if isinstance(v, (str, int, float)) and not isinstance(v, bool) else "")
        )

    if isinstance(t, dict):
        if not isinstance(v, dict):
            bad("an object")
        for key, sub in t.items():
            if key.startswith("?"):
                key = key[1:]
                if key not in v:
                    continue
            elif key not in v:
                raise UsageError(f"{path or 'report'}: missing key {key!r}")
            _check(v[key], sub, f"{path}.{key}" if path else key)
    elif isinstance(t, tuple):
        kind, arg = t
        if kind == "optional":
            if v is not None:
                _check(v, arg, path)
        elif kind == "enum":
            if v not in arg:
                bad("one of " + ", ".join(map(repr, arg)))
        elif kind == "list":
            if not isinstance(v, list):
                bad("a list")
            for i, item in enumerate(v):
                _check(item, arg, f"{path}[{i}]")
    elif t == "str":
        if not isinstance(v, str):
            bad("a string")
    elif t == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            bad("an integer")
    elif t == "number":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            bad("a number")
    elif t == "bool" and not isinstance(v, bool):
        bad("a boolean")
    elif t == "dict" and not isinstance(v, dict):
        bad("an object")


def validate_report(rep: object, source: str = "report") -> dict:
    """Validate a parsed report; returns it. Raises :class:`UsageError` on the first problem."""
    if not isinstance(rep, dict):
        raise UsageError(
            f"{source}: not a gla-verify report: expected a JSON object, got {_got(rep)}"
        )
    if "schema" not in rep:
        raise UsageError(
            f"{source}: not a versioned gla-verify report (missing key 'schema'); "
            f"write a new one with `gla-verify run --json PATH`"
        )
    v = rep["schema"]
    if isinstance(v, bool) or not isinstance(v, int):
        raise UsageError(f"{source}: schema: expected an integer, got {_got(v)}")
    if v != SCHEMA_VERSION:
        raise UsageError(
            f"{source}: schema version {v} is not supported (this gla-verify reads "
            f"version {SCHEMA_VERSION})"
        )
    try:
        _check(rep, REPORT, "")
    except UsageError as exc:
        raise UsageError(f"{source}: {exc.args[0]}") from None
    s, claims = rep["summary"], rep["claims"]
    for i, c in enumerate(claims):
        should = "pass" if c["evidence"] and all(e["passed"] for e in c["evidence"]) else "FAIL"
        if c["status"] != should:
            raise UsageError(
                f"{source}: claims[{i}].status: {c['status']!r} contradicts its evidence "
                f"(expected {should!r})"
            )
    n_pass = sum(c["status"] == "pass" for c in claims)
    if (s["claims"], s["passed"], s["failed"]) != (len(claims), n_pass, len(claims) - n_pass):
        raise UsageError(
            f"{source}: summary: says {s['claims']} claims, {s['passed']} passed, {s['failed']} "
            f"failed, but the report lists {len(claims)} claims of which {n_pass} pass"
        )
    return rep


def load_report(path: str | os.PathLike[str], what: str = "--from") -> dict:
    """Read and validate a report file; errors name ``what`` and the file."""
    p = Path(path)
    src = f"{what} {str(path)!r}"
    if not str(path).strip():
        raise UsageError(f"{what}: empty path; give a report written by `gla-verify run --json`")
    if p.is_dir():
        raise UsageError(f"{src}: is a directory, not a report file")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{src}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{src}: not a text file ({exc.reason})") from None
    except OSError as exc:
        raise EnvironmentFailure(f"{src}: cannot read: {exc.strerror or exc}") from None
    try:
        rep = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{src}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return validate_report(rep, src)
