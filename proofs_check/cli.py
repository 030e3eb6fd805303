"""``gla-verify``: list claims, run their checks, write reports.

Exit status (one meaning each; :data:`EXIT_CODES`): 0 every selected claim holds; 1 some
claim is false (a scientific verdict, nothing else); 2 usage or input error; 3 environment
or I/O failure, e.g. a claim module or an installed claim package that cannot be loaded (no
verdict reached); 130 interrupted. Every argument and output path is checked before any
computation starts. No traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from numerics._heap import keep_heap

from ._version import __version__
from .api import resolve_ids, run
from .claims import ClaimDiscoveryError
from .output import ToolError, UsageError, check_dir_target, check_file_target
from .registry import all_claims
from .report import format_table, write_json

if TYPE_CHECKING:
    from .api import Report
    from .registry import ClaimResult
    from .sweep.engine import Pool
    from .sweep.forked import ForkPool

__all__ = ["main", "DEFAULT_SETTINGS", "EXIT_CODES", "resolve_ids", "run_claims"]

#: Exit statuses of every subcommand.
EXIT_OK, EXIT_FALSE, EXIT_USAGE, EXIT_ENV, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {
    EXIT_OK: "every selected claim holds",
    EXIT_FALSE: "some claim is false (a scientific verdict, nothing else)",
    EXIT_USAGE: "usage or input error (bad argument, unusable output path, invalid report, "
    "stale page given to theory --check)",
    EXIT_ENV: (
        "environment or I/O failure: cannot write, disk full, a dependency not installed, "
        "internal error (no verdict)"
    ),
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
_EPILOG = (
    "exit status:\n"
    + "\n".join(f"  {k:<4} {v}" for k, v in EXIT_CODES.items())
    + "\n\nErrors are one line on standard error; --debug adds the traceback."
)
#: Seeds are non-negative integers below 2**63 (numpy's SeedSequence takes no negatives).
SEED_MAX = 2**63 - 1


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: an integer in ``[0, 2**63 - 1]``.

    >>> seed_arg("42")
    42
    >>> seed_arg("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer in [0, 2**63 - 1], got -1
    """
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63 - 1], got {text}")
    return v


#: The embedded default settings of the main job (``gla-verify run``).
DEFAULT_SETTINGS = {"seed": 0, "profile": "quick"}


class _Parser(argparse.ArgumentParser):
    def error(
        self, message: str
    ) -> NoReturn:  # usage errors exit with status 2 (argparse's convention)
        self.print_usage(sys.stderr)
        self.exit(2, f"gla-verify: error: {message}\n")


def _make_parser() -> argparse.ArgumentParser:
    """The ``gla-verify`` parser: global options, then one ``_add_*_parser`` per subcommand."""
    p = _Parser(
        prog="gla-verify",
        description="Verify claims about gated linear attention as in-context learner.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"gla-verify {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    add = _subcommand_adder(sub)
    add("list", help="list registered claims")
    _add_run_parser(add)
    _add_appendix_parser(add)
    _add_theory_parser(add)
    _add_stress_parser(add)
    _add_sweep_parser(add)
    return p


#: ``add(name, **kwargs)``: a subcommand parser with the shared ``--debug``, the exit-status
#: epilog and the raw-text help layout (so every ``--help`` shows the exit-status table).
_SubcommandAdder = Callable[..., argparse.ArgumentParser]


def _subcommand_adder(sub: Any) -> _SubcommandAdder:
    """``add(name, **kwargs)`` for the subparsers action ``sub`` (see :data:`_SubcommandAdder`)."""
    common = _Parser(add_help=False)
    # --debug after the subcommand too; SUPPRESS keeps the global flag's value when it is absent
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if "description" in kwargs:  # the raw layout keeps the epilog's table; wrap the prose here
            kwargs["description"] = textwrap.fill(kwargs["description"], 88)
        return sub.add_parser(
            name,
            parents=[common],
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )

    return add


def _add_seed_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed",
        type=seed_arg,
        default=DEFAULT_SETTINGS["seed"],
        help="global seed >= 0 (default 0)",
    )


def _add_run_parser(add: _SubcommandAdder) -> None:
    """``gla-verify run [ID ...] [--json PATH] [--seed S] [--full] [-v] [-q] [--workers N | --scheduler A]``."""
    r = add("run", help="run claims' checks (all claims by default)")
    r.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    r.add_argument("--json", metavar="PATH", help="write the JSON report here (atomically)")
    _add_seed_option(r)
    r.add_argument(
        "--full", action="store_true", help="the full profile: larger instances, more samples"
    )
    r.add_argument(
        "-v", "--verbose", action="store_true", help="show every check, not only failures"
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _add_pool_options(r)


def _add_appendix_parser(add: _SubcommandAdder) -> None:
    """``gla-verify appendix [ID ...] [--out DIR] [--from JSON [--current-texts]] [--seed S] [--full]
    [--no-figures] [--detail] [-q]``."""
    a = add("appendix", help="write the paper appendix (tex, md, figures, results.json)")
    a.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    a.add_argument(
        "--out",
        default="docs/appendix",
        metavar="DIR",
        help="output directory (default docs/appendix); must be new, empty or written by "
        "gla-verify before (it carries the marker file .gla-verify-appendix)",
    )
    a.add_argument(
        "--from", dest="from_json", metavar="JSON", help="build from this report instead of running"
    )
    a.add_argument(
        "--current-texts",
        action="store_true",
        help="with --from: take the claims' titles, statements, conditions, sources and notes "
        "from the claims as registered now, not from the report (editorial changes made after "
        "the run; the evidence and the verdicts stay the recorded ones, and a claim whose "
        "verdict changed since is refused)",
    )
    _add_seed_option(a)
    a.add_argument("--full", action="store_true")
    a.add_argument("--no-figures", action="store_true", help="skip the figures (fast)")
    a.add_argument(
        "--detail",
        action="store_true",
        help="add a section listing every check (the report keeps them in any case)",
    )
    a.add_argument("-q", "--quiet", action="store_true")


def _add_theory_parser(add: _SubcommandAdder) -> None:
    """``gla-verify theory [--out PATH | --check PATH]`` (options from :mod:`proofs_check.notation`)."""
    from .notation import add_arguments as _theory_arguments

    t = add(
        "theory",
        help="docs/theory.md: the setting, the symbols and every claim as checked",
        description="Generate docs/theory.md from proofs_check/notation.py and the registered "
        "claims. With --check PATH, compare PATH with the generated page instead: a stale page "
        "is an input error (exit 2), not a false claim (exit 1 is reserved for that).",
    )
    _theory_arguments(t)


def _add_stress_parser(add: _SubcommandAdder) -> None:
    """``gla-verify stress (ID ... | --all) [--examples N] [--seed S] [--first-chunk K] ...``."""
    s = add(
        "stress",
        help="hypothesis-driven counterexample search per claim (exit 1 if one is found)",
        description="Search for counterexamples to each claim's stress property. Deterministic "
        f"given --seed; a run is a union of chunks of {_stress_chunk()} distinct "
        "instances, so --first-chunk splits a long search over machines (disjoint "
        "seed ranges).",
    )
    s.add_argument("ids", nargs="*", metavar="ID", help="claim ids (or --all)")
    s.add_argument("--all", action="store_true", help="every claim with a stress property")
    s.add_argument(
        "--examples",
        type=int,
        default=100,
        metavar="N",
        help=f"distinct instances per claim (default 100, at most {_stress_max()})",
    )
    s.add_argument(
        "--seed",
        type=seed_arg,
        default=DEFAULT_SETTINGS["seed"],
        metavar="S",
        help="search seed in [0, 2**63 - 1] (default 0)",
    )
    s.add_argument(
        "--first-chunk",
        type=int,
        default=0,
        metavar="K",
        help="start at chunk K of the seed's chunk sequence (default 0); disjoint ranges give "
        "disjoint, mergeable searches",
    )
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="chunks on a local Dask cluster of N single-threaded workers (default: in this "
        "process; 0 = in this process)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="chunks on an existing Dask cluster (tcp://host:port)",
    )
    s.add_argument("--json", metavar="PATH", help="write the summaries as JSON here (atomically)")
    s.add_argument(
        "--regressions",
        metavar="DIR",
        default=None,
        help="where counterexamples are saved as regression cases (default ./stress-regressions)",
    )
    s.add_argument("--no-save", action="store_true", help="do not save counterexamples")
    s.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="merge the --json summaries of searches done in parts (disjoint seed ranges) into "
        "one summary per claim; overlapping parts are refused",
    )
    s.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _add_pool_options(r: argparse.ArgumentParser) -> None:
    """``--workers N | --scheduler ADDRESS`` of ``gla-verify run`` (where the claims and their
    independent pieces, the G5/G6 training runs, go; docs/sweeps.md)."""
    where = r.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the claims side by side, and their independent pieces (G5, G6 training), on N "
        "worker processes forked from this one (default: one per core; 0 = in this process)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run them on an existing Dask cluster, e.g. tcp://host:8786",
    )


def _run_pool(args: argparse.Namespace) -> Pool | ForkPool | None:
    """The pool of ``gla-verify run``: ``--scheduler``: that Dask cluster; ``--workers N``: N
    worker processes forked from this one (:mod:`proofs_check.sweep.forked`); by default one
    forked worker per core when there is more than one. ``--workers 0``, one core, or a
    platform that cannot fork: None (everything in this process).

    Why forked workers and not a local Dask cluster: measured, a cluster's workers each import
    the SymPy/SciPy stack again, which on 2 cores ate most of the gain (the quick profile took
    ~2x the CPU of the in-process run); forked workers start with the driver's imports.
    Raises ValueError naming a bad option."""
    from .sweep.engine import Pool, default_workers
    from .sweep.forked import ForkPool, fork_available

    if args.scheduler is not None:
        return Pool(scheduler=args.scheduler)
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers: must be an integer >= 0, got {args.workers}")
    workers = default_workers() if args.workers is None else args.workers
    if workers == 0 or (args.workers is None and (workers < 2 or not fork_available())):
        return None
    return ForkPool(workers)


def _add_sweep_parser(add: _SubcommandAdder) -> None:
    """``gla-verify sweep NAME [--quick] [--workers N | --scheduler ADDRESS] [--out DIR] [--resume]``."""
    w = add(
        "sweep",
        help="run an experiment sweep on Dask (local cluster by default); --list names them",
        description="Run a declarative experiment sweep (docs/sweeps.md). Results go to --out "
        "(default sweeps/NAME, or sweeps/NAME-quick), one row per point.",
    )
    w.add_argument(
        "name", nargs="?", metavar="NAME", help="sweep name (see --list) or module:ATTRIBUTE"
    )
    w.add_argument("--list", action="store_true", help="list the named sweeps and exit")
    w.add_argument(
        "--quick", action="store_true", help="the small version of the sweep (under a minute)"
    )
    where = w.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local Dask cluster of N single-threaded workers (default: one per core; "
        "0 = run in this process without Dask)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="send the work to an existing Dask cluster, e.g. tcp://host:8786",
    )
    w.add_argument(
        "--out", default=None, metavar="DIR", help="result directory (default sweeps/NAME[-quick])"
    )
    w.add_argument(
        "--resume",
        action="store_true",
        help="continue in a directory that already holds results of this sweep (skips finished points)",
    )
    w.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _progress_printer(quiet: bool) -> Callable[[str], None]:
    """Progress to standard error with the elapsed time (silent when ``quiet``)."""
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    return progress


PROFILES = ("quick", "full")


def run_claims(
    ids: Sequence[str],
    *,
    seed: int,
    profile: str,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[ClaimResult], dict[str, Any]]:
    """Run the given claims with one run cache; returns (results, settings).
    Raises :class:`UsageError` (before any work) for a bad seed, profile or claim id."""
    rep = _run_validated(ids, seed=seed, profile=profile, progress=progress)
    return rep.results, rep.settings


def _run_validated(
    ids: Sequence[str],
    *,
    seed: int,
    profile: str,
    progress: Callable[[str], None] | None = None,
    pool: Pool | ForkPool | None = None,
) -> Report:
    """:func:`proofs_check.api.run` after checking seed, profile and ids (``UsageError``);
    ``pool``: where the checks' independent pieces run (None: in this process)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UsageError(f"seed: must be an integer in [0, 2**63 - 1], got {seed!r}")
    if profile not in PROFILES:
        raise UsageError(f"profile: must be one of {PROFILES}, got {profile!r}")
    _claim_ids(ids)
    return run(ids, seed=seed, profile=profile, progress=progress, pool=pool)


def _claim_ids(ids: Sequence[str]) -> list[str]:
    """:func:`~proofs_check.api.resolve_ids` on the registered claims; an unknown id is a
    :class:`UsageError` (exit 2)."""
    try:
        return resolve_ids(ids, all_claims())
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def _cmd_list() -> int:
    from .notation import plain_text

    for cid, c in all_claims().items():
        print(f"{cid:<4} {plain_text(c.title)}")
        print(f"     source: {c.source}")
        print(f"     from:   {c.origin}; legs: {', '.join(sorted(c.legs()))}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    ids = _claim_ids(args.ids)
    json_path = check_file_target(args.json, "--json") if args.json is not None else None
    try:
        pool = _run_pool(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    progress = _progress_printer(args.quiet)

    from .sweep.engine import ClusterError

    profile = "full" if args.full else "quick"
    try:
        if pool is not None:
            progress(f"claims and their independent pieces run on {pool.backend}")
            with pool:
                rep = _run_validated(
                    ids, seed=args.seed, profile=profile, progress=progress, pool=pool
                )
        else:
            rep = _run_validated(ids, seed=args.seed, profile=profile, progress=progress)
    except ClusterError as exc:
        print(f"gla-verify: error: {exc}", file=sys.stderr)
        return EXIT_ENV
    results = rep.results
    print(format_table(results, verbose=args.verbose))
    if json_path is not None:
        write_json(json_path, rep.to_json())
        print(f"JSON report written to {args.json}")
    return 0 if all(r.passed for r in results) else 1


def _cmd_appendix(args: argparse.Namespace) -> int:
    from .appendix import build_appendix, load_report, report_from_run, with_current_texts

    progress = _progress_printer(args.quiet)

    if args.from_json is not None:
        if args.ids:
            print("gla-verify: error: give claim ids or --from, not both", file=sys.stderr)
            return 2
        report = load_report(args.from_json)  # validated against the schema: UsageError
        if args.current_texts:
            report = with_current_texts(report)  # a changed verdict: UsageError
        check_dir_target(args.out, "--out")
    else:
        if args.current_texts:
            print("gla-verify: error: --current-texts needs --from", file=sys.stderr)
            return 2
        ids = _claim_ids(args.ids)
        check_dir_target(args.out, "--out")
        report = report_from_run(
            ids, seed=args.seed, profile="full" if args.full else "quick", progress=progress
        )
    out = build_appendix(
        args.out, report, progress=progress, figures=not args.no_figures, detail=args.detail
    )
    print(f"appendix written to {out}/ (appendix.tex, appendix.md, figures/, results.json)")
    return 0 if report["summary"]["failed"] == 0 else 1


def _stress_chunk() -> int:
    from .stress.core import CHUNK

    return CHUNK


def _stress_max() -> int:
    from .stress.core import MAX_EXAMPLES

    return MAX_EXAMPLES


def _cmd_stress(args: argparse.Namespace) -> int:
    """``gla-verify stress``: see :mod:`proofs_check.stress.command`."""
    from .stress.command import run_command

    return run_command(args, _progress_printer(args.quiet))


def _cmd_sweep(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 every point finished, 2 usage error, 3 some point failed (recorded with
    its error) or environment (I/O, cluster), 130 interrupted (finished points are kept).

    A sweep gives no verdict on a claim, so status 1 ("a claim is false") never comes from here;
    a point that raised is a computation without a result, which is what status 3 means."""
    from .sweep import catalog
    from .sweep.engine import ClusterError, check_scheduler_address, run_sweep
    from .sweep.store import StoreError

    def usage(msg: str) -> int:
        print(f"gla-verify: error: {msg}", file=sys.stderr)
        return 2

    if args.list:
        if args.name:
            return usage("give a sweep NAME or --list, not both")
        for name in catalog.sweep_names():
            sw = catalog.get_sweep(name)
            npq, npf = len(sw.points("quick")), len(sw.points("full"))
            print(f"{name:<14} {sw.description}  [{npf} points; --quick: {npq}]")
        return 0
    if not args.name:
        return usage("sweep: give a sweep NAME (see gla-verify sweep --list)")
    if args.workers is not None and args.workers < 0:
        return usage(f"--workers: must be >= 0, got {args.workers}")
    if args.scheduler is not None:
        try:
            check_scheduler_address(args.scheduler)
        except ValueError as exc:
            return usage(str(exc))
    try:
        sweep = catalog.get_sweep(args.name)
    except catalog.UnknownSweep as exc:
        return usage(str(exc))
    profile = "quick" if args.quick else "full"
    out = args.out or os.path.join("sweeps", sweep.name + ("-quick" if args.quick else ""))
    try:
        outcome = run_sweep(
            sweep,
            profile=profile,
            out=out,
            resume=args.resume,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.quiet,
            argv=["gla-verify"] + list(sys.argv[1:] if argv is None else argv),
        )
    except StoreError as exc:
        print(f"gla-verify: error: {exc}", file=sys.stderr)
        return 2 if exc.usage else 3
    except ClusterError as exc:
        print(f"gla-verify: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(
            f"gla-verify: interrupted; finished points are stored in {out}/points "
            f"(continue with --resume)",
            file=sys.stderr,
        )
        return 130
    if outcome.summary is not None:
        print(outcome.summary["text"])
    if outcome.exported:
        print(f"exported: {', '.join(os.path.join(out, f) for f in outcome.exported)}")
    print(
        f"{sweep.name}: {len(outcome.rows)} points ({outcome.computed} computed, {outcome.cached} cached, "
        f"{outcome.failed} failed) in {outcome.seconds:.1f} s on {outcome.backend}; results in {out}/results.parquet"
    )
    for r in outcome.rows:
        if r["status"] != "ok":
            print(f"  failed point {r['key']}: {r['error']}", file=sys.stderr)
    return 3 if outcome.failed else 0


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.cmd == "list":
        return _cmd_list()
    if args.cmd == "run":
        return _cmd_run(args)
    if args.cmd == "appendix":
        return _cmd_appendix(args)
    if args.cmd == "stress":
        return _cmd_stress(args)
    if args.cmd == "sweep":
        return _cmd_sweep(args)
    if args.cmd == "theory":
        from .notation import theory_page

        return theory_page(args.out, args.check)
    parser.error(f"unknown command {args.cmd}")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :data:`EXIT_CODES`)."""
    parser = _make_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)

    def fail(code: int, msg: str) -> int:
        if debug:
            traceback.print_exc()
        print(f"gla-verify: error: {msg}", file=sys.stderr)
        return code

    try:
        keep_heap()  # the run's temporaries reuse pages instead of faulting in new ones
        return _dispatch(parser, args)
    except KeyboardInterrupt:
        return fail(
            EXIT_INTERRUPTED,
            "interrupted; outputs are unchanged or complete "
            "(an interrupted appendix swap is finished by the next run)",
        )
    except ToolError as exc:
        return fail(exc.exit_code, str(exc))
    except ClaimDiscoveryError as exc:  # a claim module or claim package cannot be loaded
        return fail(EXIT_ENV, str(exc))
    except OSError as exc:  # I/O that is not ours to classify further: the environment
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return fail(EXIT_ENV, f"{exc.strerror or exc}{where}")
    except MemoryError:
        return fail(EXIT_ENV, "out of memory")
    except ModuleNotFoundError as exc:  # a dependency is not installed: the environment
        return fail(
            EXIT_ENV,
            f"the Python package {exc.name or str(exc)!r} is missing: install gla-verify with its "
            "dependencies (python -m pip install -e . in the checkout)",
        )
    except Exception as exc:  # noqa: BLE001  (a bug in gla-verify: no verdict; say how to see more)
        return fail(
            EXIT_ENV,
            f"internal error: {type(exc).__name__}: {exc}"
            + ("" if debug else " (rerun with --debug for the traceback)"),
        )


if __name__ == "__main__":
    sys.exit(main())
