r"""The result store of one sweep: one file per finished point, a table per run.

Layout of the output directory ``OUT``::

    OUT/sweep.json          manifest: sweep name, profile, point count, package version
    OUT/points/KEY.json     one record per finished point (written atomically when it finishes)
    OUT/results.parquet     the table, one row per grid point, in grid order
    OUT/results.csv         the same table as CSV (lists as space-separated numbers)
    OUT/summary.json        the study's own summary (verdicts, aggregates), if it has one

A record holds ``key, sweep, status ("ok" | "failed"), error, seed, version`` (the package
version), ``seconds`` (wall time of the point function), ``params`` and ``result``. The table row
is the flat union ``key, sweep, status, error, seed, version, seconds, <params>, <result>``.

Only files the tool writes are ever replaced, and nothing is deleted: a directory that holds
anything but a manifest of the same sweep is refused (:class:`StoreError`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["META_COLUMNS", "ResultStore", "StoreError", "atomic_write_bytes", "rows_to_table"]

#: Columns every row has, before the parameters and results.
META_COLUMNS = ("key", "sweep", "status", "error", "seed", "version", "seconds")
#: Columns that vary between identical runs (wall times); excluded when comparing rows.
VOLATILE_COLUMNS = ("seconds",)


class StoreError(Exception):
    """The output directory cannot be used (wrong contents, or an I/O error); ``usage`` tells
    whether it is the user's choice of directory (exit 2) or the environment (exit 3)."""

    def __init__(self, message: str, *, usage: bool) -> None:
        super().__init__(message)
        self.usage = usage


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and ``os.replace``: readers (and a
    resumed run after a kill) see the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_bytes(obj) -> bytes:
    # NaN/inf are legal in a point's result (a diverged run); Python's json writes and reads
    # them back exactly, and floats round-trip through repr.
    return (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()


class ResultStore:
    """Records of one sweep in directory ``out`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike, sweep_name: str) -> None:
        self.out = Path(out)
        self.points_dir = self.out / "points"
        self.sweep_name = sweep_name

    # ------------------------------------------------------------------ set-up
    def check(self, *, resume: bool) -> int:
        """Refuse a directory we cannot use, before any work. Returns the number of stored
        records. Without ``resume`` the directory must be new, empty, or hold no finished point
        of this sweep (a run that stopped before its first point)."""
        if self.out.exists() and not self.out.is_dir():
            raise StoreError(f"--out: {self.out} exists and is not a directory", usage=True)
        if not self.out.exists():
            return 0
        try:
            entries = sorted(os.listdir(self.out))
        except OSError as exc:
            raise StoreError(
                f"--out: cannot read {self.out}: {exc.strerror}", usage=False
            ) from None
        if not entries:
            return 0
        manifest = self.out / "sweep.json"
        if not manifest.exists():
            raise StoreError(
                f"--out: {self.out} is not empty and holds no sweep results (no sweep.json); "
                f"choose a new or empty directory",
                usage=True,
            )
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"--out: cannot read {manifest}: {exc}", usage=False) from None
        if meta.get("sweep") != self.sweep_name:
            raise StoreError(
                f"--out: {self.out} holds results of sweep {meta.get('sweep')!r}, "
                f"not {self.sweep_name!r}",
                usage=True,
            )
        n = len(self._record_files())
        if not resume and n:
            raise StoreError(
                f"--out: {self.out} already holds results of this sweep ({n} points); "
                f"pass --resume to continue it (finished points are kept), or choose another "
                f"directory",
                usage=True,
            )
        return n

    def open(self, manifest: dict) -> None:
        """Create the directories and (re)write the manifest."""
        try:
            self.points_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.out / "sweep.json", _json_bytes(manifest))
        except OSError as exc:
            raise StoreError(
                f"--out: cannot write to {self.out}: {exc.strerror or exc}", usage=False
            ) from None

    # ------------------------------------------------------------------ records
    def _record_files(self) -> list[str]:
        if not self.points_dir.is_dir():
            return []
        return [
            f for f in os.listdir(self.points_dir) if f.endswith(".json") and not f.startswith(".")
        ]

    def load(self, keys: Iterable[str] | None = None) -> dict[str, dict]:
        """Stored records by key (only ``keys`` if given). An unreadable record (which atomic
        writes should make impossible) is treated as absent, so the point runs again."""
        wanted = None if keys is None else set(keys)
        out = {}
        for f in self._record_files():
            key = f[:-5]
            if wanted is not None and key not in wanted:
                continue
            try:
                out[key] = json.loads((self.points_dir / f).read_text())
            except (OSError, ValueError):
                continue
        return out

    def write(self, record: dict) -> None:
        try:
            atomic_write_bytes(self.points_dir / f"{record['key']}.json", _json_bytes(record))
        except OSError as exc:
            raise StoreError(
                f"cannot write point record to {self.points_dir}: {exc.strerror or exc}",
                usage=False,
            ) from None

    # ------------------------------------------------------------------ tables
    def write_tables(self, rows: list[dict], summary: dict | None) -> None:
        try:
            table = rows_to_table(rows)
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(table, buf)
            atomic_write_bytes(self.out / "results.parquet", buf.getvalue())
            atomic_write_bytes(self.out / "results.csv", rows_to_csv(rows).encode())
            if summary is not None:
                atomic_write_bytes(self.out / "summary.json", _json_bytes(summary))
        except OSError as exc:
            raise StoreError(
                f"cannot write results to {self.out}: {exc.strerror or exc}", usage=False
            ) from None


def flat_row(record: dict) -> dict:
    """The table row of a record: meta columns, then parameters, then results."""
    row = {c: record.get(c) for c in META_COLUMNS}
    row.update(record.get("params", {}))
    for k, v in (record.get("result") or {}).items():
        row[k if k not in row else f"result_{k}"] = v
    return row


def _columns(rows: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


def rows_to_table(rows: list[dict]) -> pa.Table:
    """A ``pyarrow.Table`` with one column per key: bool, int64, float64, string,
    list<float64> inferred per column (missing values are null); anything else as JSON text."""
    import pyarrow as pa

    cols = _columns(rows)
    arrays = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        present = [v for v in vals if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            arrays[c] = pa.array(vals, pa.bool_())
        elif (
            present
            and all(isinstance(v, int) and not isinstance(v, bool) for v in present)
            and all(-(2**63) <= v < 2**63 for v in present)
        ):
            arrays[c] = pa.array(vals, pa.int64())
        elif present and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in present
        ):
            arrays[c] = pa.array([None if v is None else float(v) for v in vals], pa.float64())
        elif all(isinstance(v, str) for v in present):
            arrays[c] = pa.array(vals, pa.string())
        elif all(
            isinstance(v, (list, tuple))
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            for v in present
        ):
            arrays[c] = pa.array(
                [None if v is None else [float(x) for x in v] for v in vals], pa.list_(pa.float64())
            )
        else:
            arrays[c] = pa.array([None if v is None else json.dumps(v) for v in vals], pa.string())
    return pa.table(arrays)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return " ".join(_cell(x) for x in v)
    return str(v)


def rows_to_csv(rows: list[dict]) -> str:
    cols = _columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue()


def comparable(rows: list[dict]) -> list[dict]:
    """Rows without the :data:`VOLATILE_COLUMNS` (what two identical runs must agree on)."""
    return [{k: v for k, v in r.items() if k not in VOLATILE_COLUMNS} for r in rows]


def read_table(out: str | os.PathLike) -> list[dict]:
    """The rows of ``OUT/results.parquet`` as dicts (a convenience for analysis and tests)."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(out) / "results.parquet").to_pylist()


__all__ += ["VOLATILE_COLUMNS", "comparable", "flat_row", "read_table", "rows_to_csv"]
