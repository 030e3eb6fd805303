"""``gla-verify``: list claims, run their checks, write reports.

Exit status: 0 all selected claims pass, 1 some claim fails, 2 usage error, 3 environment
(e.g. a claim module or an installed claim package that cannot be loaded).
"""
from __future__ import annotations

import argparse
import sys
import time

from ._version import __version__
from .api import run
from .claims import ClaimDiscoveryError
from .registry import all_claims
from .report import format_table, write_json

__all__ = ["main", "DEFAULT_SETTINGS", "resolve_ids", "run_claims"]

#: The embedded default settings of the main job (``gla-verify run``).
DEFAULT_SETTINGS = {"seed": 0, "profile": "quick"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit with status 2 (argparse's convention)
        self.print_usage(sys.stderr)
        self.exit(2, f"gla-verify: error: {message}\n")


def _make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gla-verify", description="Verify claims about gated linear attention as in-context learner.")
    p.add_argument("--version", action="version", version=f"gla-verify {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list registered claims")

    r = sub.add_parser("run", help="run claims' checks (all claims by default)")
    r.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    r.add_argument("--json", metavar="PATH", help="write the JSON report here (atomically)")
    r.add_argument("--seed", type=int, default=DEFAULT_SETTINGS["seed"], help="global seed (default 0)")
    r.add_argument("--full", action="store_true", help="the full profile: larger instances, more samples")
    r.add_argument("-v", "--verbose", action="store_true", help="show every check, not only failures")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    a = sub.add_parser("appendix", help="write the paper appendix (tex, md, figures, results.json)")
    a.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    a.add_argument("--out", default="docs/appendix", metavar="DIR", help="output directory (default docs/appendix)")
    a.add_argument("--from", dest="from_json", metavar="JSON", help="build from this report instead of running")
    a.add_argument("--seed", type=int, default=DEFAULT_SETTINGS["seed"])
    a.add_argument("--full", action="store_true")
    a.add_argument("--no-figures", action="store_true", help="skip the figures (fast)")
    a.add_argument("-q", "--quiet", action="store_true")

    t = sub.add_parser("theory", help="docs/theory.md: the setting, the symbols and every claim as checked")
    from .notation import add_arguments as _theory_arguments
    _theory_arguments(t)

    s = sub.add_parser("stress", help="hypothesis-driven counterexample search for one claim (exit 1 if found)")
    s.add_argument("id", metavar="ID", help="claim id with a stress property (L4, L5)")
    s.add_argument("--examples", type=int, default=100, metavar="N", help="examples to draw (default 100)")
    s.add_argument("--seed", type=int, default=DEFAULT_SETTINGS["seed"], metavar="S", help="search seed (default 0)")
    s.add_argument("--json", metavar="PATH", help="write the summary as JSON here (atomically)")
    s.add_argument("--regressions", metavar="DIR", default=None,
                   help="where counterexamples are saved (default tests/regressions/)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def _progress_printer(quiet: bool):
    """Progress to standard error with the elapsed time (silent when ``quiet``)."""
    t0 = time.perf_counter()

    def progress(msg):
        if not quiet:
            print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)
    return progress


def resolve_ids(ids: list[str], claims: dict) -> list[str]:
    if not ids:
        return list(claims)
    unknown = [i for i in ids if i not in claims]
    if unknown:
        raise KeyError(f"unknown claim id(s): {', '.join(unknown)}; known: {', '.join(claims)}")
    return list(dict.fromkeys(ids))


def run_claims(ids: list[str], *, seed: int, profile: str, progress=None):
    """Run the given claims with one run cache; returns (results, settings)."""
    rep = run(ids, seed=seed, profile=profile, progress=progress)
    return rep.results, rep.settings


def _cmd_list() -> int:
    for cid, c in all_claims().items():
        print(f"{cid:<4} {c.title}")
        print(f"     source: {c.source}")
        print(f"     from:   {c.origin}; legs: {', '.join(sorted(c.legs()))}")
    return 0


def _cmd_run(args) -> int:
    claims = all_claims()
    try:
        ids = resolve_ids(args.ids, claims)
    except KeyError as exc:
        print(f"gla-verify: error: {exc.args[0]}", file=sys.stderr)
        return 2
    progress = _progress_printer(args.quiet)

    rep = run(ids, seed=args.seed, profile="full" if args.full else "quick", progress=progress)
    results = rep.results
    print(format_table(results, verbose=args.verbose))
    if args.json:
        write_json(args.json, rep.to_json())
        print(f"JSON report written to {args.json}")
    return 0 if all(r.passed for r in results) else 1


def _cmd_appendix(args) -> int:
    from .appendix import build_appendix, load_report, report_from_run
    progress = _progress_printer(args.quiet)

    if args.from_json:
        if args.ids:
            print("gla-verify: error: give claim ids or --from, not both", file=sys.stderr)
            return 2
        try:
            report = load_report(args.from_json)
        except (OSError, ValueError) as exc:
            print(f"gla-verify: error: {exc}", file=sys.stderr)
            return 2
    else:
        try:
            ids = resolve_ids(args.ids, all_claims())
        except KeyError as exc:
            print(f"gla-verify: error: {exc.args[0]}", file=sys.stderr)
            return 2
        report = report_from_run(ids, seed=args.seed, profile="full" if args.full else "quick",
                                 progress=progress)
    out = build_appendix(args.out, report, progress=progress, figures=not args.no_figures)
    print(f"appendix written to {out}/ (appendix.tex, appendix.md, figures/, results.json)")
    return 0 if report["summary"]["failed"] == 0 else 1


def _cmd_stress(args) -> int:
    import json

    from .registry import jsonable
    from .report import atomic_write_text
    from .stress import PROPERTIES, format_summary, run_stress

    if args.id not in PROPERTIES:
        known = "unknown claim id" if args.id not in all_claims() else "no stress property for claim"
        print(f"gla-verify: error: {known} {args.id!r}; stress properties exist for: {', '.join(PROPERTIES)}",
              file=sys.stderr)
        return 2
    if args.examples < 0:
        print("gla-verify: error: --examples must be >= 0", file=sys.stderr)
        return 2
    progress = _progress_printer(args.quiet)

    summary = run_stress(args.id, examples=args.examples, seed=args.seed, progress=progress,
                         save_dir=args.regressions)
    print(format_summary(summary))
    if args.json:
        atomic_write_text(args.json, json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n")
        print(f"JSON summary written to {args.json}")
    return 1 if summary["counterexamples"] else 0


def main(argv=None) -> int:
    parser = _make_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except ClaimDiscoveryError as exc:
        print(f"gla-verify: error: {exc}", file=sys.stderr)
        return 3


def _dispatch(parser, args) -> int:
    if args.cmd == "list":
        return _cmd_list()
    if args.cmd == "run":
        return _cmd_run(args)
    if args.cmd == "appendix":
        return _cmd_appendix(args)
    if args.cmd == "stress":
        return _cmd_stress(args)
    if args.cmd == "theory":
        from .notation import theory_page
        return theory_page(args.out, args.check)
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
