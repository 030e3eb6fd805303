"""Benchmarks: ``python -m bench.gla`` etc. Ratios are against a reference run in the same process."""

from __future__ import annotations

import argparse
import json
from collections.abc import Container

from proofs_check.output import write_text_atomic


def choices(
    ap: argparse.ArgumentParser, text: str, flag: str, allowed: Container[str]
) -> list[str]:
    """The comma-separated names of ``text`` (blanks dropped); a name not in ``allowed`` is a
    usage error naming ``flag`` (``ap.error``: exit status 2).

    >>> choices(argparse.ArgumentParser(), "a, b,", "--x", {"a", "b"})
    ['a', 'b']
    """
    names = [s.strip() for s in text.split(",") if s.strip()]
    for s in names:
        if s not in allowed:
            ap.error(f"{flag}: unknown {flag.lstrip('-').rstrip('s')} {s!r}")
    return names


def layer_counts(ap: argparse.ArgumentParser, text: str) -> list[int]:
    """The comma-separated layer counts of ``--layers`` (each ``>= 1``, at least one), else a
    usage error.

    >>> layer_counts(argparse.ArgumentParser(), "1,2, 4")
    [1, 2, 4]
    """
    try:
        layers = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        ap.error("--layers: expected comma-separated integers")
    if not layers or min(layers) < 1:
        ap.error("--layers: layer counts must be >= 1")
    return layers


def write_results(path: str, meta: dict, rows: list) -> None:
    """``{"meta": meta, "results": rows}`` as JSON into ``path``, written whole
    (:func:`proofs_check.output.write_text_atomic`: a unique temporary sibling, renamed over
    ``path``, removed on failure). NaN (a ratio not evaluated) is written as ``NaN``."""
    write_text_atomic(path, json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
