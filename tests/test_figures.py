"""Figures are drawn for readers: at printed size (width <= the appendix text width, no text
below 7 pt), with the plotted data saved beside them and a LaTeX caption that says where the
data come from.

Every figure of every claim is drawn here from small synthetic inputs of the right shape (the
run's evidence, the sweep tables), so the test is fast; the size rules are enforced by
``save_figure`` itself and shown to catch planted defects.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from proofs_check import plotting as pl
from proofs_check.registry import all_claims
from proofs_check.sweep.store import rows_to_csv

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the size rules
@pytest.mark.filterwarnings("ignore:constrained_layout not applied")  # the planted text outside
def test_size_rules_catch_planted_defects(tmp_path):
    plt = pl.pyplot()
    fig, ax = pl.figure(height=2.0)
    ax[0, 0].plot([1, 2], [1, 2])
    assert pl.print_size_problems(fig) == []
    assert pl.smallest_font_pt(fig) >= pl.MIN_FONT_PT
    ax[0, 0].set_xlabel("small", fontsize=6.5)
    ax[0, 0].text(3.0, 1.0, "outside", transform=ax[0, 0].transAxes)
    fig.set_size_inches(6.0, 2.0)
    problems = " | ".join(pl.print_size_problems(fig))
    assert "'small' is 6.5 pt" in problems
    assert "'outside' reaches outside" in problems
    assert "width 6.00 in" in problems
    with pytest.raises(ValueError, match="figure planted: .*6.5 pt"):
        pl.save_figure(fig, tmp_path, "planted", [{"x": 1}])
    assert not (tmp_path / "figures").exists()  # nothing written
    plt.close("all")
    with pytest.raises(ValueError, match="width"):
        pl.figure(height=2.0, width=pl.TEXT_WIDTH_IN + 0.1)


def test_save_figure_writes_the_plotted_data_beside_it(tmp_path):
    fig, ax = pl.figure(height=1.5)
    ax[0, 0].plot([1, 2], [3, 4])
    pl.save_figure(fig, tmp_path, "f", [{"x": 1, "y": 3.0}, {"x": 2, "y": 4.0}], notes={"seed": 0})
    d = tmp_path / "figures"
    assert sorted(p.name for p in d.iterdir()) == ["f.csv", "f.pdf", "f.png"]
    rows, comments = pl.read_csv(d / "f.csv")
    assert rows == [{"x": "1", "y": "3"}, {"x": "2", "y": "4"}] and comments == ["seed = 0"]


def test_sweep_table_cells_keep_integers_exact():
    assert pl._cell_value("1402960956259477059") == 1402960956259477059
    assert pl._cell_value("0.55 0 0.8") == [0.55, 0, 0.8]
    assert pl._cell_value("") is None and pl._cell_value("nonmonotone") == "nonmonotone"


# ----------------------------------------------------------------------------- every figure
def _ev(check, **figures):
    return {"check": check, "leg": "numerics", "figures": figures}


def _fake_entries() -> dict[str, dict]:
    """Report entries of the claims whose figures read the run's evidence (shapes as the
    checks write them, values made up)."""
    g3 = {
        "instance": "rho increasing",
        "L_wpgd": 1.0,
        "none/noctx": 1.2,
        "none/ctx": 1.1,
        "shared/noctx": 1.05,
        "shared/ctx": 1.0,
        "distinct/noctx": 1.0,
        "distinct/ctx": 1.0,
    }
    g5 = []
    for s in ("3-task", "single-task"):
        for a, base in (("gla", 2.0), ("linear", 2.3)):
            risk = [base, base - 0.3, base - 0.35, base - 0.36]
            g5.append(
                _ev(
                    f"{s}/{a}: test risk non-increasing in L=1..4 within 4 s.e.",
                    risk=risk,
                    stderr=[0.02] * 4,
                    drop=[0.3, 0.05, 0.01],
                    drop_se_paired=[0.01, 0.002, 0.0005],
                )
            )
        g5.append(
            _ev(f"{s}: GLA strictly better", gain=[0.0, 0.3, 0.35, 0.36], gain_se_paired=[0.01] * 4)
        )
    g6 = []
    for s in ("single", "nonmonotone"):
        for a in ("linear", "scalar", "vector"):
            curve = [[t, 1.0 + 2.0 / (1 + t)] for t in range(0, 101, 20)]
            g6.append(
                _ev(
                    f"{s} / {a}",
                    setting=s,
                    architecture=a,
                    restriction="wpgd",
                    u_trained=[1.0],
                    curve_exact=curve,
                    predicted_risk=0.99,
                    rel_gap=curve[-1][1] / 0.99 - 1,
                    steps=100,
                    batch_size=8,
                    seed=0,
                    model_d=2,
                    model_sigma=0.1,
                )
            )
    return {
        "G3": {"id": "G3", "evidence": [_ev("table", table=[g3, dict(g3, instance="mixed")])]},
        "G5": {"id": "G5", "evidence": g5},
        "G6": {"id": "G6", "evidence": g6},
    }


_BUDGET = {
    "steps": 20,
    "batch_size": 16,
    "lr": 0.05,
    "eval_every": 10,
    "eval_size": 32,
    "mc_prompts": 200,
    "fn_prompts": 32,
}


def _sweep_tables(data_dir: Path) -> None:
    """Small tables in the sweeps' flat format (``rows_to_csv``): tiny budgets, d = 4."""
    rows = []
    for m in (1, 2):
        n = 3 * m
        rows.append(
            {"status": "ok", "m": m, "arch": "baselines", "rep": 0, "n": n}
            | {f"pred_{a}": 5.0 - m - 0.1 * k for k, a in enumerate(("linear", "scalar", "vector"))}
            | {"null_risk": 8.0, "null_se": 0.01, "bayes_risk": 4.0 - m, "bayes_se": 0.01}
            | {"ridge_risk": 20.0, "ridge_se": 0.5, "ols_risk": None, "ols_se": None}
        )
        for a in ("linear", "scalar", "vector"):
            for rep in range(2):
                rows.append(
                    {"status": "ok", "m": m, "arch": a, "rep": rep, "d": 4, "rho": [0.55, 0, 0.8]}
                    | {"sigma": 0.1, "steps": 20, "n": n, "trained_risk": 5.1 - m}
                    | {"rel_gap": 0.01 * (1 + rep)}
                )
    (data_dir / "risk_vs_n.csv").write_text(rows_to_csv(rows))
    rows = [
        {"status": "ok", "seed": 2**62 + 7 * rep, "setting": "nonmonotone", "arch": a, "rep": rep}
        | {"d": 4, "m": 2, "sigma": 0.1, "cond": 10.0, "sigma_seed": 0}
        | _BUDGET
        | {"u_trained": [0.6, 0.1, 0.8], "rel_gap": 0.01}
        for a in ("linear", "scalar", "vector")
        for rep in range(2)
    ]
    (data_dir / "g6_seeds.csv").write_text(rows_to_csv(rows))


def _math_free(caption: str) -> str:
    """The caption without its math (``$...$``) and escaped underscores."""
    return re.sub(r"\$[^$]*\$", "", caption).replace(r"\_", "")


def _pdf_width_in(path: Path) -> float:
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)", path.read_bytes())
    assert box, path
    return (float(box.group(3)) - float(box.group(1))) / 72.0


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    for f in ("phase_diagram.csv", "depth.csv"):
        shutil.copy(ROOT / "docs" / "data" / f, data_dir / f)
    _sweep_tables(data_dir)
    out = tmp_path_factory.mktemp("out")
    entries = _fake_entries()
    caps = {}
    for cid, claim in all_claims().items():
        for f in claim.figures:
            caps[f.name] = f.make(entries.get(cid), out, data_dir)
    return out / "figures", caps


def test_every_figure_is_drawn_with_data_and_caption(drawn):
    figdir, caps = drawn
    assert len(caps) == 10
    for name, cap in caps.items():
        assert cap, f"{name}: no caption (data not available)"
        for ext in ("png", "pdf", "csv"):
            assert (figdir / f"{name}.{ext}").is_file(), f"{name}.{ext}"
        rows, _ = pl.read_csv(figdir / f"{name}.csv")
        assert rows, f"{name}.csv is empty"
        assert _pdf_width_in(figdir / f"{name}.pdf") <= pl.TEXT_WIDTH_IN + 1e-6, name


def test_captions_are_latex_and_say_where_the_data_come_from(drawn):
    _, caps = drawn
    for name, cap in caps.items():
        text = _math_free(cap)
        assert cap.count("$") % 2 == 0, name
        assert not re.search(r"(?<!\\)%", cap), f"{name}: unescaped % (a LaTeX comment)"
        assert not re.search(r"[\^_]", text), f"{name}: math outside $...$: {text}"
        assert not re.search(r"\b(Sigma|sigma|rho|omega|lambda|phi)\b", text), f"{name}: {text}"
        assert "Data:" in cap or "Computed by the figure" in cap, name
    for claim in all_claims().values():
        for f in claim.figures:  # titles: Markdown with inline math, as the claims' texts
            title = _math_free(f.title)
            assert not re.search(r"[\\^_{}]|>=|<=|\b(Sigma|rho|omega)\b", title), f.title
    assert "research-scale" in caps["trained_risk_vs_n"]
    assert "research-scale" in caps["trained_vs_predicted"]


def test_phase_diagram_is_the_closed_form_map_with_its_predicted_boundaries(drawn):
    """The CSV holds the whole grid; the zero-gap cells are exactly those the predicted
    boundary encloses; the marked reopening point and the gain boundary separate the phases
    within PHASE_BOUNDARY; the certified slice agrees with the closed form."""
    from proofs_check import tolerances as tol
    from proofs_check.experiments import phase_diagram as PD

    figdir, _ = drawn
    rows, comments = pl.read_csv(figdir / "phase_diagram.csv")
    notes = dict(c.split(" = ", 1) for c in comments)
    K, rb = int(notes["K"]), float(notes["slice_rho_bar"])
    grid = [r for r in rows if r["kind"] == "closed_form"]
    assert len(grid) == len(PD.MAP_SPREADS) * len(PD.MAP_RHO_BARS) == 40 * 32
    assert sorted({float(r["spread"]) for r in grid}) == pytest.approx(PD.MAP_SPREADS)
    kappa = float(notes["gain_slope"])
    for r in grid:
        zero_gap = float(r["gap"]) <= tol.CERTIFIED_VALUE
        assert zero_gap == (r["reaches"] == "True") == (r["predicted_reaches"] == "True"), r
        assert float(r["gain"]) >= -tol.CERTIFIED_VALUE, r
        # the caption's gain region: relevance increasing toward the query, or |rho_bar| small
        s, rho_bar = float(r["spread"]), float(r["rho_bar"])
        gains = rho_bar * s > 0 or abs(rho_bar) < kappa * abs(s)
        assert (float(r["gain"]) > tol.CERTIFIED_VALUE) == gains, r
    s_open = float(notes["reopening_spread"])
    assert s_open == pytest.approx(2 * K * rb / (K - 1), rel=1e-12)
    d = tol.PHASE_BOUNDARY
    assert PD.closed_form_cell(K, s_open * (1 - d), rb)["reaches"]
    assert not PD.closed_form_cell(K, s_open * (1 + d), rb)["reaches"]
    assert PD.closed_form_cell(K, -1.0, kappa * (1 - d))["gain"] > tol.CERTIFIED_VALUE
    assert PD.closed_form_cell(K, -1.0, kappa * (1 + d))["gain"] <= tol.CERTIFIED_VALUE
    assert kappa == pytest.approx(1 / 8, rel=d)  # K = 4: pooled mean = negative tail (0,0,0,1/4)
    certified = [r for r in rows if r["kind"] == "certified"]
    assert len(certified) == 9
    for r in certified:
        cf = PD.closed_form_cell(K, float(r["spread"]), float(r["rho_bar"]))
        for q in ("gap", "gain"):
            assert float(r[q]) == pytest.approx(cf[q], abs=tol.CERTIFIED_VALUE), (r, q)


def test_training_curves_sit_where_the_claim_says(tmp_path):
    """The exact risk along training is never below the predicted optimum and its last point is
    the trained risk the verdict uses."""
    from proofs_check.experiments import trained as T

    s = next(x for x in T.default_settings() if x.name == "monotone")
    r = T.run_case(s, "scalar", profile="tiny", seed=3)
    curve = np.array(r.figures["curve_exact"])
    steps = [int(t) for t in curve[:, 0]]
    assert steps[0] == 0 and steps[-1] == T.PROFILES["tiny"].steps
    assert curve[-1, 1] == pytest.approx(r.figures["trained_risk"], rel=1e-9)
    assert np.all(curve[:, 1] >= r.figures["predicted_risk"] * (1 - 1e-9))
    assert (
        T.run_case(s, "scalar", profile="tiny", seed=3, restriction="free").figures["curve_exact"]
        is None
    )


@pytest.mark.slow
def test_sweep_figures_fall_back_to_the_quick_sweep(tmp_path):
    caps = {}
    for f in all_claims()["G6"].figures:
        if f.name in ("trained_risk_vs_n", "trained_vs_predicted"):
            caps[f.name] = f.make(None, tmp_path, tmp_path / "no-data")
    assert all("quick profile" in c for c in caps.values())
