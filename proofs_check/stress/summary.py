"""Terminal output of stress searches: one block per claim, and a table over claims."""

from __future__ import annotations

import json

__all__ = ["format_summary", "format_table"]


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _ranges_text(ranges) -> str:
    """``[[seed, start, stop], ...]`` as ``seed 0 chunks 0-99, ...`` (top-up blocks included)."""
    return ", ".join(
        f"seed {a} chunk{'' if c - b == 1 else 's'} {b}{'' if c - b == 1 else f'-{c - 1}'}"
        for a, b, c in ranges or []
    )


def format_summary(s: dict) -> str:
    """One claim's summary: counts per outcome, coverage of the edge regimes, the worst
    margin, the smallest counterexample, where regressions went."""
    lines = [f"stress {s['claim']}: {s['statement']}"]
    if s.get("proxy"):
        lines.append(f"  proxy: {s['proxy']}")
    seed = (
        f"seed {s['seed']}"
        if s.get("seed") is not None
        else "seeds " + ", ".join(str(x) for x in sorted({r[0] for r in s["chunk_ranges"]}))
    )
    lines.append(
        f"  {s['distinct']} distinct instances (requested {s['requested']}, {seed}, "
        f"{s['draws']} draws, {s['duplicates_dropped']} duplicates dropped across chunks), "
        f"{s['failures']} counterexample(s), {s['seconds']:.1f}s"
    )
    if len(s.get("parts") or []) > 1:
        lines.append(
            f"  merged from {len(s['parts'])} parts ({s.get('duplicates_across_parts', 0)} "
            "instances in more than one): "
            + "; ".join(f"{p['file']} ({_ranges_text(p['chunk_ranges'])})" for p in s["parts"])
        )
    lines.append(
        "  tolerances: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in s["tolerances"].items())
    )
    lines.append(
        "  outcomes: "
        + ", ".join(
            f"{k}{' (COUNTEREXAMPLE)' if k in s['bad_outcomes'] else ''}: {v}"
            for k, v in s["counts"].items()
        )
    )
    if s["coverage"]:
        lines.append("  coverage: " + ", ".join(f"{k}: {v}" for k, v in s["coverage"].items()))
    if s["worst"]:
        w = s["worst"][0]
        lines.append(
            f"  largest error/tolerance: {_fmt(float(w['margin']) if not isinstance(w['margin'], str) else w['margin'])}"
            f" ({w['outcome']}) at {json.dumps(w['params'], sort_keys=True)}"
        )
    if s["smallest"]:
        c = s["smallest"]
        how = (
            f"shrunk by hypothesis in {c['shrink_evaluations']} evaluations"
            if c["shrunk"]
            else "not shrunk"
        )
        lines.append(
            f"  smallest counterexample ({how}): {c['outcome']} at {json.dumps(c['params'], sort_keys=True)}"
        )
        figs = {k: v for k, v in (c.get("figures") or {}).items() if k != "spec"}
        lines.append(f"    figures: {json.dumps(figs, sort_keys=True, default=str)[:400]}")
        if c.get("error"):
            lines.append(f"    error: {c['error'][:300]}")
    for w, n in (s.get("warnings") or {}).items():
        lines.append(f"  warning ({n}x in the chunks): {w}")
    for p in s["saved"]:
        lines.append(f"  saved {p}")
    for e in s["save_errors"]:
        lines.append(f"  COULD NOT SAVE: {e}")
    return "\n".join(lines)


def format_table(summaries: list[dict]) -> str:
    """One row per claim: distinct instances, counterexamples, time."""
    head = f"{'claim':<5} {'distinct':>9} {'failures':>9} {'seconds':>8} {'cpu s':>8}  outcomes"
    rows = [head, "-" * len(head)]
    for s in summaries:
        oc = ", ".join(f"{k}={v}" for k, v in s["counts"].items())
        rows.append(
            f"{s['claim']:<5} {s['distinct']:>9} {s['failures']:>9} {s['seconds']:>8.1f} "
            f"{s.get('cpu_seconds', 0.0):>8.1f}  {oc}"
        )
    tot = sum(s["distinct"] for s in summaries)
    rows.append(
        f"{'all':<5} {tot:>9} {sum(s['failures'] for s in summaries):>9} "
        f"{sum(s['seconds'] for s in summaries):>8.1f} {sum(s.get('cpu_seconds', 0.0) for s in summaries):>8.1f}"
    )
    return "\n".join(rows)
