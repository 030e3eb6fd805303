r"""The ``gla-verify stress`` command: arguments checked before any work, the searches on the
chosen pool, the output, and ``--merge``.

Exit status: 0 no counterexample, 1 a counterexample, 2 usage error (:class:`UsageError`,
raised before any search starts), 3 environment (the cluster cannot be reached, the
``--json`` file cannot be written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..output import EnvironmentFailure, UsageError, check_file_target

__all__ = ["run_command"]

#: Largest ``--workers`` (a local cluster of more processes than this is a typo).
MAX_WORKERS = 256


def _check_ids(args) -> list[str]:
    """The claims to search, in the suite's order for ``--all``; UsageError names a bad id."""
    from ..registry import all_claims
    from . import load_properties, ordered_ids

    if args.all == bool(args.ids):
        raise UsageError("give claim ids or --all (not both)")
    props = load_properties()
    ids = ordered_ids() if args.all else list(dict.fromkeys(args.ids))
    for cid in ids:
        if cid not in props:
            known = (
                "unknown claim id" if cid not in all_claims() else "no stress property for claim"
            )
            raise UsageError(
                f"{known} {cid!r}; stress properties exist for: {', '.join(ordered_ids())}"
            )
    return ids


def _check_numbers(args) -> None:
    from .core import MAX_EXAMPLES

    if not 1 <= args.examples <= MAX_EXAMPLES:
        raise UsageError(f"--examples must be in [1, {MAX_EXAMPLES}], got {args.examples}")
    if args.first_chunk < 0:
        raise UsageError(f"--first-chunk must be >= 0, got {args.first_chunk}")
    if args.workers is not None and not 0 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be in [0, {MAX_WORKERS}], got {args.workers}")
    if args.scheduler is not None:
        from ..sweep.engine import check_scheduler_address

        try:
            check_scheduler_address(args.scheduler)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def _check_dir(path: str, what: str) -> None:
    """UsageError unless ``path`` is a writable directory or can be created under a writable one."""
    if path == "":
        raise UsageError(f"{what}: empty path")
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"{what}: {path} exists and is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{what}: {path} is not writable")
        return
    anc = p.absolute().parent
    while not anc.exists():
        anc = anc.parent
    if not (anc.is_dir() and os.access(anc, os.W_OK | os.X_OK)):
        raise UsageError(f"{what}: cannot create {path}")


def _regressions_dir(args) -> str | None:
    from .core import DEFAULT_REGRESSION_DIR

    if args.no_save:
        return None
    save_dir = args.regressions or DEFAULT_REGRESSION_DIR
    _check_dir(save_dir, "--regressions")
    return save_dir


def _chunk_pool(workers, scheduler):
    """``(pool, map_chunks)`` for the chunks: the sweep engine's Dask pool (a local cluster of
    ``workers`` single-threaded workers, or ``scheduler``), or ``(None, None)`` (in this
    process). ``map_chunks`` submits every chunk at once and yields results as they finish;
    they are merged in chunk order, so the result does not depend on where they ran."""
    if scheduler is None and not workers:
        return None, None
    from ..sweep.engine import ClusterError, Pool

    try:
        pool = Pool(workers=workers, scheduler=scheduler).start()
    except ClusterError as exc:
        raise EnvironmentFailure(str(exc)) from None

    def map_chunks(fn, tasks):
        for _, ok, value in pool.imap_unordered(fn, [(t,) for t in tasks]):
            if not ok:
                raise value
            yield value

    return pool, map_chunks


def _search_all(ids, args, save_dir, progress) -> list[dict]:
    """Each claim's search in turn (its summary printed as it finishes), on one pool."""
    from . import format_summary, run_stress

    pool, map_chunks = _chunk_pool(args.workers, args.scheduler)
    summaries = []
    try:
        for cid in ids:
            summary = run_stress(
                cid,
                examples=args.examples,
                seed=args.seed,
                progress=progress,
                save_dir=save_dir,
                first_chunk=args.first_chunk,
                map_chunks=map_chunks,
            )
            print(format_summary(summary), end="\n\n", flush=True)
            summaries.append(summary)
    finally:
        if pool is not None:
            pool.close()
    return summaries


def _write_json(path, doc: dict) -> None:
    from ..registry import jsonable
    from ..report import atomic_write_text

    try:
        atomic_write_text(path, json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write --json {path}: {exc}") from None
    print(f"JSON summary written to {path}")


def _finish(summaries: list[dict], json_path, doc: dict) -> int:
    """Table, JSON, save errors; the exit status (1 if any claim has a counterexample)."""
    from . import format_table

    print(format_table(summaries))
    if json_path is not None:
        _write_json(json_path, doc)
    failed_saves = [e for s in summaries for e in s["save_errors"]]
    if failed_saves:
        print(
            f"gla-verify: error: {len(failed_saves)} counterexample(s) could not be saved: "
            f"{failed_saves[0]}",
            file=sys.stderr,
        )
    return 1 if any(s["failures"] for s in summaries) else 0


def _merge(args) -> int:
    """``--merge A.json B.json ...``: one summary per claim from searches done in parts."""
    from . import format_summary
    from .merge import merge_documents, read_part

    if args.ids or args.all:
        raise UsageError("--merge takes JSON files, not claim ids or --all")
    json_path = check_file_target(args.json, "--json") if args.json is not None else None
    try:
        doc = merge_documents([(p, read_part(p)) for p in args.merge])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for s in doc["summaries"]:
        print(format_summary(s), end="\n\n")
    return _finish(doc["summaries"], json_path, doc)


def run_command(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """Run ``gla-verify stress`` with parsed ``args``; ``progress(message)`` reports on long
    searches. Returns the exit status; raises :class:`UsageError` (2) before any work and
    :class:`EnvironmentFailure` (3)."""
    if getattr(args, "merge", None):
        return _merge(args)
    ids = _check_ids(args)
    _check_numbers(args)
    json_path = check_file_target(args.json, "--json") if args.json is not None else None
    save_dir = _regressions_dir(args)
    summaries = _search_all(ids, args, save_dir, progress)
    doc = {
        "command": "stress",
        "settings": {
            "ids": ids,
            "examples": args.examples,
            "seed": args.seed,
            "first_chunk": args.first_chunk,
            "workers": args.workers,
            "scheduler": args.scheduler,
            "regressions": save_dir,
        },
        "summaries": summaries,
    }
    return _finish(summaries, json_path, doc)
