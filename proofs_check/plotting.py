r"""Figure glue shared by claim figures: printed size, style, saving with the plotted data.

Figures are drawn by the claims that own them (``@CLAIM.figure``); this module holds what they
share. The appendix includes every figure at its natural size (no scaling), so a figure is
drawn at its printed size: at most :data:`TEXT_WIDTH_IN` wide, every text element at least
:data:`MIN_FONT_PT` (the sizes are set once, in :data:`STYLE`), colours from the colour-blind-safe
Okabe–Ito palette, one style per architecture (:data:`ARCH_STYLE`). :func:`save_figure` refuses
a figure that breaks the size rules (:func:`print_size_problems`) and writes the data the figure
plots beside it (``<name>.csv``), so a number in the picture can be checked.

A figure function returns its caption as LaTeX text (math in ``$...$``) that says where its
data come from.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ARCH_STYLE",
    "MIN_FONT_PT",
    "OKABE_ITO",
    "STYLE",
    "TEXT_WIDTH_IN",
    "figure",
    "mc_errorbar",
    "print_size_problems",
    "pyplot",
    "read_csv",
    "save_figure",
    "smallest_font_pt",
    "sweep_rows",
]

#: Width of the appendix text block in inches; figures are drawn at most this wide and included
#: at their natural size.
TEXT_WIDTH_IN = 5.5
#: No text element of a figure may be smaller than this (points, at printed size).
MIN_FONT_PT = 7.0

#: Okabe & Ito's colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

#: One look per architecture / reference predictor in every figure: key -> (label, colour,
#: marker, line style).
ARCH_STYLE = {
    "linear": ("linear attention", OKABE_ITO["vermillion"], "o", "-"),
    "scalar": ("scalar GLA", OKABE_ITO["blue"], "s", "--"),
    "vector": ("vector GLA", OKABE_ITO["green"], "^", "-."),
    "wpgd": ("optimal WPGD", OKABE_ITO["black"], "D", ":"),
    "null": ("null predictor $\\hat y=0$", "#777777", "v", (0, (1, 1))),
    "bayes": ("Bayes-optimal", OKABE_ITO["purple"], "P", (0, (5, 1))),
    "ridge": ("single-task ridge", OKABE_ITO["orange"], "X", (0, (3, 1, 1, 1))),
    "ols": ("OLS", OKABE_ITO["sky"], "*", (0, (2, 2))),
}

#: matplotlib settings of every figure (sizes in points at printed size).
STYLE: dict[str, Any] = {
    "font.size": 8.0,
    "axes.labelsize": 8.0,
    "axes.titlesize": 8.0,
    "figure.titlesize": 8.0,
    "legend.fontsize": 7.0,
    "legend.title_fontsize": 7.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "lines.linewidth": 1.2,
    "lines.markersize": 4.0,
    "errorbar.capsize": 2.0,
    "axes.linewidth": 0.6,
    "legend.frameon": False,
    "legend.handlelength": 2.2,
    "axes.prop_cycle": None,  # filled in by pyplot(): the Okabe-Ito cycle
    "pdf.fonttype": 42,
    "savefig.dpi": 200,
}


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, with :data:`STYLE` applied to
    ``matplotlib.rcParams`` (process-wide: tick labels are created lazily at draw time, so the
    sizes must hold when the figure is saved, not only when it is built)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    style = dict(STYLE)
    style["axes.prop_cycle"] = cycler(
        color=[OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky")]
    )
    matplotlib.rcParams.update(style)  # type: ignore[arg-type]
    return plt


def figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    height: float,
    width: float = TEXT_WIDTH_IN,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """A new figure of ``width × height`` inches (its printed size) with constrained layout,
    and its axes (``squeeze=False``: always a 2-D array); ``kwargs`` go to ``plt.subplots``."""
    if not 0 < width <= TEXT_WIDTH_IN:
        raise ValueError(f"width: must be in (0, {TEXT_WIDTH_IN}] inches, got {width!r}")
    plt = pyplot()
    fig, ax = plt.subplots(
        nrows, ncols, figsize=(width, height), layout="constrained", squeeze=False, **kwargs
    )
    return fig, ax


def mc_errorbar(
    ax: Axes,
    x: Sequence[float],
    mean: Sequence[float],
    se: Sequence[float],
    key: str,
    *,
    label: str | None = None,
    filled: bool = True,
    **kwargs: Any,
) -> None:
    """Monte Carlo (or over-seed) estimates ``mean ± 2 se`` as markers with error bars in the
    style of ``key`` (:data:`ARCH_STYLE`); hollow markers with ``filled=False``."""
    _, col, mk, _ = ARCH_STYLE[key]
    ax.errorbar(
        x,
        mean,
        yerr=[2.0 * float(s) for s in se],
        color=col,
        marker=mk,
        ls="none",
        mfc=col if filled else "white",
        label=label,
        **kwargs,
    )


def _drawn_texts(fig: Figure) -> tuple[list, Any]:
    """Draw ``fig`` and return the text artists that were really drawn (visible, non-empty;
    tick labels outside the view limits exist but are not drawn) and the renderer."""
    from matplotlib.text import Text

    drawn: list = []
    original = Text.draw

    def recording(self: Any, renderer: Any) -> None:
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        original(self, renderer)

    Text.draw = recording  # type: ignore[method-assign]
    try:
        fig.canvas.draw()
    finally:
        Text.draw = original  # type: ignore[method-assign]
    return drawn, fig.canvas.get_renderer()  # type: ignore[attr-defined]


def print_size_problems(fig: Figure) -> list[str]:
    """What breaks the printed-size rules: a width above :data:`TEXT_WIDTH_IN`, a text element
    (drawn, non-empty) below :data:`MIN_FONT_PT`, or one reaching outside the figure (cut off).
    Draws the figure first (tick labels exist only after a draw); ``[]`` when all hold.

    >>> plt = pyplot()
    >>> fig, ax = figure(height=2.0)
    >>> print_size_problems(fig)
    []
    >>> _ = ax[0, 0].set_title("tiny", fontsize=5)
    >>> print_size_problems(fig)
    ["text 'tiny' is 5.0 pt (< 7.0 pt)"]
    >>> plt.close(fig)
    """
    out = []
    w = float(fig.get_size_inches()[0])
    if w > TEXT_WIDTH_IN + 1e-9:
        out.append(f"width {w:.2f} in > text width {TEXT_WIDTH_IN} in")
    texts, renderer = _drawn_texts(fig)
    box = fig.bbox
    for t in texts:
        size = float(t.get_fontsize())
        if size < MIN_FONT_PT - 1e-9:
            out.append(f"text {t.get_text()!r} is {size:.1f} pt (< {MIN_FONT_PT} pt)")
        ext = t.get_window_extent(renderer)
        if ext.x0 < box.x0 - 1 or ext.x1 > box.x1 + 1 or ext.y0 < box.y0 - 1 or ext.y1 > box.y1 + 1:
            out.append(f"text {t.get_text()!r} reaches outside the figure")
    return out


def smallest_font_pt(fig: Figure) -> float:
    """The smallest font size (points) of the drawn, non-empty text elements of ``fig``."""
    texts, _ = _drawn_texts(fig)
    return min((float(t.get_fontsize()) for t in texts), default=math.inf)


def _save_atomic(fig: Figure, path: Path, **kwargs: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_figure(
    fig: Figure,
    outdir: Path,
    name: str,
    data: list[dict],
    *,
    notes: dict | None = None,
) -> None:
    """Save ``outdir/figures/<name>.pdf``, ``.png`` (200 dpi) and ``<name>.csv`` (the plotted
    ``data``, one row per dict, columns in first-seen order, ``notes`` as ``# key = value``
    lines) and close the figure. Raises ``ValueError`` (and writes nothing) when the figure
    breaks the printed-size rules (:func:`print_size_problems`). Each file is written whole
    (a temporary sibling renamed over it)."""
    from .experiments._base import write_csv

    problems = print_size_problems(fig)
    if problems:
        pyplot().close(fig)
        raise ValueError(f"figure {name}: " + "; ".join(problems))
    if not data:
        pyplot().close(fig)
        raise ValueError(f"figure {name}: data: the plotted data must not be empty")
    d = Path(outdir) / "figures"
    d.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in data for k in row))
    write_csv(d / f"{name}.csv", data, columns, digits=10, comments=notes)
    try:
        _save_atomic(fig, d / f"{name}.pdf")
        _save_atomic(fig, d / f"{name}.png", dpi=200)
    finally:
        pyplot().close(fig)


def _cell_value(v: str) -> Any:
    """A CSV cell of a sweep table back as a number, a list of numbers (space-separated), a
    string, or ``None`` (empty)."""
    if v == "":
        return None
    parts = v.split(" ")
    try:
        # integers stay exact (63-bit seeds do not survive a float)
        nums = [int(x) if x.lstrip("-").isdigit() else float(x) for x in parts]
    except ValueError:
        return v
    return nums if len(parts) > 1 else nums[0]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _with_params(row: dict, points: list[dict]) -> dict:
    """``row`` completed with the parameters of the one grid point it agrees with (an exported
    table keeps only some of them); unchanged when no single point matches."""
    found = [p for p in points if all(_same(v, row[k]) for k, v in p.items() if k in row)]
    return found[0] | row if len(found) == 1 else row


def sweep_rows(data_dir: Path, sweep: Any) -> tuple[list[dict], str]:
    """The finished rows of ``sweep`` and where they come from (LaTeX, for the caption).

    Read from the research-scale run the sweep exported to ``data_dir`` when it exists:
    ``<name>.csv`` (one row per trained point, lists space-separated) and, if present,
    ``<name>_baselines.csv`` (rows get ``arch = "baselines"``); each row is completed with the
    parameters of its point of the full grid. Otherwise the sweep's quick profile is computed
    here, in this process, into a temporary store."""
    path = Path(data_dir) / f"{sweep.name}.csv"
    tex_name = sweep.name.replace("_", r"\_")
    if path.exists():
        rows = read_csv(path)[0]
        base = Path(data_dir) / f"{sweep.name}_baselines.csv"
        if base.exists():
            rows += [r | {"arch": "baselines"} for r in read_csv(base)[0]]
        points = sweep.points("full")
        out = [_with_params({k: _cell_value(v) for k, v in r.items()}, points) for r in rows]
        return [r for r in out if r.get("status", "ok") == "ok"], (
            rf"the research-scale (full-profile) sweep \texttt{{{tex_name}}} "
            rf"(\texttt{{docs/data/{tex_name}.csv}})"
        )
    from .sweep.engine import run_sweep

    with tempfile.TemporaryDirectory(prefix="gla-verify-fig-") as tmp:
        res = run_sweep(sweep, profile="quick", out=Path(tmp) / "store", workers=0, progress=False)
    return [r for r in res.rows if r["status"] == "ok"], (
        rf"the quick profile of sweep \texttt{{{tex_name}}}, computed when the figure was drawn "
        r"(the research-scale results were not available)"
    )


def read_csv(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a CSV with ``#``-comment settings lines; returns ``(rows, comment lines)``.

    >>> import tempfile, os
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("# seed 0\\na,b\\n1,2\\n")
    >>> read_csv(p)
    ([{'a': '1', 'b': '2'}], ['seed 0'])
    """
    lines = Path(path).read_text().splitlines()
    comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    return rows, comments
