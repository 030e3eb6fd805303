r"""One summary from searches done in parts: ``gla-verify stress --merge A.json B.json``.

A long search splits into *seed ranges*: invocations with the same ``--seed`` and disjoint
``--first-chunk`` ranges (or different seeds), run at the same time on separate machines
or clusters. Each writes its summaries with ``--json``; :func:`merge_documents` joins them
into the summary one search over all their chunks would give:

* **disjoint or refused.** Two parts of a claim that ran a chunk id of the same seed (listed
  in their ``chunk_ranges``) would count the same draws twice: the merge is refused, naming
  both files, the claim, the seed and the chunks in common. Parts must also come from the
  same property (statement, tolerances, chunk size).
* **distinct instances.** Disjoint chunks can still draw the same instance (e.g. every
  ``d = 1`` covariance is ``[[1]]``); the union counts it once (the first part's row;
  evaluations are deterministic per instance, so its outcome and tags are the same in
  both). ``duplicates_dropped`` adds these to the parts' own.
* **exact tallies.** ``counts``, ``coverage``, ``failures`` and ``first_failure_at`` are
  recomputed from the parts' per-instance rows (``instances``); counterexamples, the
  smallest one and the largest margins are taken over the parts; ``seconds`` and
  ``cpu_seconds`` are summed (the parts' wall times add up to the work, not to the elapsed
  time when they ran at once); ``parts`` lists where each piece came from.

A merged document can be merged again. Parts are ordered by (seed, first chunk), so the
result does not depend on the order of the files.

>>> a = {"command": "stress", "summaries": [{"claim": "L7", "chunk_ranges": [[0, 0, 1]]}]}
>>> b = {"command": "stress", "summaries": [{"claim": "L7", "chunk_ranges": [[0, 0, 2]]}]}
>>> merge_documents([("a.json", a), ("b.json", b)])
Traceback (most recent call last):
...
ValueError: --merge: a.json and b.json overlap: L7, seed 0, chunk 0 in both (split a search with disjoint --first-chunk ranges or different seeds)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .core import MAX_SAVED, _instances, _size_key

__all__ = ["merge_documents", "merge_summaries", "read_part"]

#: Fields that must agree between the parts of one claim (else they searched different things).
SAME = ("statement", "proxy", "tolerances", "chunk_size", "bad_outcomes")


def read_part(path: str | os.PathLike) -> dict:
    """A ``gla-verify stress --json`` document; ValueError naming ``--merge`` and the file if
    it cannot be read or is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"--merge: cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--merge: {path} is not JSON: {exc}") from None
    if not (
        isinstance(doc, dict)
        and doc.get("command") == "stress"
        and isinstance(doc.get("summaries"), list)
    ):
        raise ValueError(f"--merge: {path} is not a summary of gla-verify stress --json")
    return doc


def _ranges(name: str, s: dict) -> list[tuple[int, int, int]]:
    if "chunk_ranges" not in s:
        raise ValueError(
            f"--merge: {name} has no chunk_ranges for {s.get('claim')} (written by an older "
            f"gla-verify stress); rerun that part"
        )
    return [(int(a), int(b), int(c)) for a, b, c in s["chunk_ranges"]]


def _coalesce(ranges) -> list[list[int]]:
    """Sorted ``[seed, start, stop]`` ranges with adjacent ones of a seed joined."""
    out: list[list[int]] = []
    for seed, a, b in sorted(tuple(r) for r in ranges):
        if out and out[-1][0] == seed and out[-1][2] == a:
            out[-1][2] = b
        else:
            out.append([seed, a, b])
    return out


def _chunks_text(first: int, last: int) -> str:
    return f"chunk {first}" if first == last else f"chunks {first}-{last}"


def _check_disjoint(claim: str, parts: list[tuple[str, dict]]) -> None:
    """ValueError naming the first two parts that ran a common chunk of a common seed."""
    for i, (na, a) in enumerate(parts):
        for nb, b in parts[i + 1 :]:
            for sa, a0, a1 in _ranges(na, a):
                for sb, b0, b1 in _ranges(nb, b):
                    lo, hi = max(a0, b0), min(a1, b1)
                    if sa == sb and lo < hi:
                        raise ValueError(
                            f"--merge: {na} and {nb} overlap: {claim}, seed {sa}, "
                            f"{_chunks_text(lo, hi - 1)} in both (split a search with "
                            f"disjoint --first-chunk ranges or different seeds)"
                        )


def _check_same_property(claim: str, parts: list[tuple[str, dict]]) -> None:
    n0, s0 = parts[0]
    for n, s in parts[1:]:
        for k in SAME:
            if s.get(k) != s0.get(k):
                raise ValueError(
                    f"--merge: {n0} and {n} differ in {k} for {claim} (searches of different "
                    f"versions of the property cannot be merged)"
                )
        if "instances" not in s or "instances" not in s0:
            which = n if "instances" not in s else n0
            raise ValueError(
                f"--merge: {which} has no per-instance rows for {claim} (written by an older "
                f"gla-verify stress); rerun that part"
            )


def _union_rows(parts: list[tuple[str, dict]]) -> tuple[list[dict], int]:
    """``(rows, duplicates)``: ``{key, outcome, tags}`` of every distinct instance, in part order."""
    rows, seen, dup = [], set(), 0
    for _, s in parts:
        t = s["instances"]
        for key, o, mask in zip(t["key"], t["outcome"], t["tags"], strict=True):
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            tags = [name for j, name in enumerate(t["tag_names"]) if mask >> j & 1]
            rows.append({"key": key, "outcome": t["outcome_names"][o], "tags": tags})
    return rows, dup


def _margin(w: dict) -> float:
    m = float(w["margin"])
    return m if not math.isnan(m) else -math.inf


def _first_part(name: str, s: dict) -> tuple:
    r = min(_ranges(name, s)) if s.get("chunk_ranges") else (0, 0, 0)
    return (r[0], r[1], name)


def _part_record(name: str, s: dict) -> list[dict]:
    if s.get("parts"):
        return list(s["parts"])
    return [
        {
            "file": name,
            "seed": s.get("seed"),
            "first_chunk": s.get("first_chunk"),
            "chunk_ranges": s.get("chunk_ranges"),
            "requested": s.get("requested"),
            "distinct": s.get("distinct"),
            "seconds": s.get("seconds"),
            "cpu_seconds": s.get("cpu_seconds"),
        }
    ]


def _tallies(rows: list[dict], bad: set) -> dict:
    """``counts``, ``coverage``, ``failures``, ``first_failure_at`` and ``instances`` of the rows."""
    counts: dict[str, int] = {}
    coverage: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        for t in r["tags"]:
            coverage[t] = coverage.get(t, 0) + 1
    return {
        "counts": dict(sorted(counts.items())),
        "failures": sum(counts.get(o, 0) for o in bad),
        "coverage": dict(sorted(coverage.items())),
        "first_failure_at": next((i + 1 for i, r in enumerate(rows) if r["outcome"] in bad), None),
        "instances": _instances(rows),
    }


def _findings(parts: list[tuple[str, dict]]) -> dict:
    """Counterexamples (each instance once), the smallest one, the largest margins, the saved
    files, save errors and warnings, over the parts."""
    cex, keys = [], set()
    for _, s in parts:
        for c in s["counterexamples"]:
            if c["key"] not in keys:
                keys.add(c["key"])
                cex.append(c)
    smallest = [s["smallest"] for _, s in parts if s.get("smallest")]
    worst = sorted((w for _, s in parts for w in s["worst"]), key=_margin, reverse=True)
    warned: dict[str, int] = {}
    for _, s in parts:
        for k, v in s.get("warnings", {}).items():
            warned[k] = warned.get(k, 0) + v
    return {
        "worst": worst[:3],
        "counterexamples": cex[:MAX_SAVED],
        "smallest": min(smallest, key=lambda c: _size_key(c["params"])) if smallest else None,
        "saved": [p for _, s in parts for p in s["saved"]],
        "save_errors": [e for _, s in parts for e in s["save_errors"]],
        "warnings": dict(sorted(warned.items())),
    }


def merge_summaries(parts: list[tuple[str, dict]]) -> dict:
    """The summary of one claim's parts ``[(file name, summary), ...]`` (see the module
    docstring); ValueError if they overlap or searched different properties."""
    parts = sorted(parts, key=lambda p: _first_part(*p))
    first = parts[0][1]
    claim = first["claim"]
    _check_same_property(claim, parts)
    _check_disjoint(claim, parts)
    rows, dup = _union_rows(parts)
    seeds = sorted({r[0] for n, s in parts for r in _ranges(n, s)})
    total = lambda k: sum(s.get(k, 0) for _, s in parts)  # noqa: E731
    return {
        "claim": claim,
        **{k: first.get(k) for k in SAME},
        "seed": seeds[0] if len(seeds) == 1 else None,
        "first_chunk": None,
        "chunk_ranges": _coalesce(r for n, s in parts for r in _ranges(n, s)),
        "requested": total("requested"),
        "distinct": len(rows),
        "draws": total("draws"),
        "duplicates_dropped": total("duplicates_dropped") + dup,
        "duplicates_across_parts": dup,
        "chunks": total("chunks"),
        **_tallies(rows, set(first["bad_outcomes"])),
        **_findings(parts),
        "seconds": total("seconds"),
        "cpu_seconds": total("cpu_seconds"),
        "parts": [rec for n, s in parts for rec in _part_record(n, s)],
    }


def merge_documents(docs: list[tuple[str, dict]]) -> dict:
    """Merge ``gla-verify stress --json`` documents ``[(file name, document), ...]``: one
    summary per claim (claims in order of first appearance), each merged from the parts that
    searched it (:func:`merge_summaries`; a claim searched in one part only is taken as is).
    ValueError naming the files if two parts overlap or a part cannot be merged."""
    by_claim: dict[str, list[tuple[str, dict]]] = {}
    for name, doc in docs:
        for s in doc["summaries"]:
            by_claim.setdefault(s["claim"], []).append((name, s))
    for claim, parts in by_claim.items():
        _check_disjoint(claim, parts)  # first, so an overlap is named even in old files
    summaries = []
    for parts in by_claim.values():
        if len(parts) == 1:
            name, s = parts[0]
            summaries.append({**s, "parts": _part_record(name, s)})
        else:
            summaries.append(merge_summaries(parts))
    return {
        "command": "stress",
        "settings": {
            "merged_from": [name for name, _ in docs],
            "ids": list(by_claim),
            "parts": {name: doc.get("settings") for name, doc in docs},
        },
        "summaries": summaries,
    }
