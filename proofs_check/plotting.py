"""Figure glue shared by claim figures: the Agg backend, saving at printed size, data files.

Figures are drawn by the claims that own them (``@CLAIM.figure``) and by
:mod:`proofs_check.figures` (suite figures); this module only holds what they share.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["TEXT_WIDTH_IN", "pyplot", "save_figure", "read_csv"]

#: Text width of the appendix page, in inches: figures are drawn at most this wide and are
#: included at their natural size, so the font sizes they are drawn with are the printed ones.
TEXT_WIDTH_IN = 5.5


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, outdir: Path, name: str) -> None:
    """Save ``outdir/figures/<name>.pdf`` and ``.png`` (130 dpi) and close the figure."""
    outdir = Path(outdir)
    (outdir / "figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / "figures" / f"{name}.pdf", bbox_inches="tight")
    fig.savefig(outdir / "figures" / f"{name}.png", dpi=130, bbox_inches="tight")
    pyplot().close(fig)


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
