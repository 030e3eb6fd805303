r"""``gla-verify stress ID``: hypothesis-driven searches for counterexamples to a claim.

A *stress property* is registered per claim id (:data:`PROPERTIES`). It has

* a hypothesis strategy drawing a random instance of the multitask model
  (:class:`numerics.data.MultitaskModel`: ``R`` (n+1)x(n+1) PSD, ``Sigma`` dxd PD, noise
  std ``sigma``), deliberately mixing the hard regimes: near-singular / low-rank ``R``,
  ``K``-task mixtures, ill-conditioned ``Sigma`` (condition number up to 1e8, spread or
  clustered eigenvalues), query correlations ``r`` scaled towards 0, ``sigma`` near 0;
* an *evaluation* ``evaluate(model, rng) -> dict`` (figures for one instance, JSON-able, with
  an ``outcome`` key; see :func:`evaluate_L5` and :func:`evaluate_L4`);
* the set of outcomes that count as counterexamples.

:func:`run_stress` drives the search with ``hypothesis`` used programmatically
(``@given`` + ``settings(max_examples=N, database=None, deadline=None)`` + ``@seed(S)``,
generate and target phases, no shrinking: every example is recorded, so the counts are
exact). ``hypothesis.target`` steers the search towards the figures that would break the
claim (more fixed points, smaller runner-up gap, larger solver-vs-baseline excess).
Same ``(examples, seed)``, same instances, same summary.

Comparisons use the *gain* ``F(omega) = L0 - L(omega) = a^2 sum_k lambda_k^2/(b lambda_k + c)``
(``L0 = sigma^2 + R_{n+1,n+1} tr Sigma`` the null risk) computed directly from ``(a, b, c)``,
not as a difference of risks: with ``r`` near 0 the gain is ~|r|^2 L0 and a difference of
risks would lose it to cancellation.

This module composes :mod:`numerics` only (never :mod:`theory`).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from numerics.data import MultitaskModel, random_correlation, random_covariance
from numerics.landscape import brute_force_wpgd, omega_curve, solve_wpgd
from numerics.risk import abc, null_risk, phi, profile_risk_grad

__all__ = ["PROPERTIES", "StressProperty", "gain", "evaluate_L5", "evaluate_L4", "build_instance",
           "model_from_json", "model_to_json", "run_stress", "format_summary", "save_regression",
           "REGRESSION_DIR"]

#: Default folder for counterexamples found by ``stress`` (one JSON file per instance).
REGRESSION_DIR = Path(__file__).resolve().parents[1] / "tests" / "regressions"

# --- tolerances (all relative to the solver's gain F*, which is computed to ~1e-14) ---
#: The solver is "worse than brute force" only if the baseline's gain exceeds the solver's
#: by more than this. 1e-10 is ~1e4 times the rounding of the spectral formulas; any genuine
#: miss (a wrong fixed point) is of the order of the gap between local maxima, >> 1e-10.
GAIN_TOL = 1e-10
#: Two optima "differ in direction" if 1 - |cos| exceeds this. 1e-6 is far above what the
#: baseline's L-BFGS stopping rule leaves (measured 1 - cos <= 1e-12 at converged optima)
#: and far below any genuinely distinct optimum.
DIRECTION_TOL = 1e-6
#: Curve property: ||(A + tB) omega - proj_r|| / ||(A + tB) omega|| at t = phi(omega) for the
#: brute-force optimum. L-BFGS stops at a relative gradient ~1e-13..1e-9 of the scaled objective,
#: which leaves a residual up to ~1e-6 on ill-conditioned instances; 1e-4 flags only points
#: that are genuinely off the curve.
CURVE_RESID_TOL = 1e-4
#: Grid size of the independent dense scan of J(t) = F(omega(t)) over the bracket.
SCAN_POINTS = 200


def gain(model: MultitaskModel, omega) -> float:
    """``F(omega) = a^2 sum_k lambda_k^2/(b lambda_k + c)`` (0 if ``b = c = 0``): the risk
    reduction ``L0 - min_P L(P, omega)`` below the null risk, invariant under ``omega -> s omega``."""
    a, b, c = abc(model, omega)
    if b == 0 and c == 0:
        return 0.0
    lam = np.asarray(model.eigvals)
    return float(a * a * np.sum(lam ** 2 / (b * lam + c)))


def scale_free_baseline(model: MultitaskModel, rng: np.random.Generator, *, restarts: int = 4,
                        maxiter: int = 2000) -> np.ndarray:
    r"""Multistart L-BFGS maximising ``F(omega)/F(omega_0)`` over ``u = sqrt(B) omega``
    (gradient from :func:`numerics.risk.profile_risk_grad`); starts ``r`` and ``restarts``
    Gaussian vectors (in ``u``).

    Two scalings make it robust where :func:`numerics.landscape.brute_force_wpgd` is slow or
    stops early: the objective is normalised by the gain at the start (not by ``L0``), so it
    keeps its resolution when ``F << L0`` (``r`` near 0); and the variables are scaled by
    ``sqrt(B_ii)`` (``B_ii = 0``: 1), so task variances ``R_ii`` spread over decades do not
    make the problem ill-conditioned in ``omega``. Returns the best ``omega`` (unnormalised).
    Never uses the curve or the 1-D reduction.
    """
    from scipy.optimize import minimize

    Bd = np.asarray(model.B_diag)
    s = np.where(Bd > 0, 1.0 / np.sqrt(np.where(Bd > 0, Bd, 1.0)), 1.0)
    starts = [model.r / s] + list(rng.standard_normal((int(restarts), model.n)))
    best, best_F = None, -np.inf
    for u0 in starts:
        u0 = u0 / np.linalg.norm(u0)
        F0 = gain(model, s * u0)
        if not F0 > 0:
            F0 = max(gain(model, model.r), 1e-300)

        def fg(u, F0=F0):
            w = s * u
            _, g = profile_risk_grad(model, w)
            return -gain(model, w) / F0, s * g / F0
        res = minimize(fg, u0, jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 30})
        F = gain(model, s * res.x)
        if F > best_F:
            best, best_F = s * res.x, F
    return best


#: Iteration cap for :func:`brute_force_wpgd` inside the stress search: its objective is
#: badly scaled on some instances (spread task variances) and would otherwise run its full
#: 5000 iterations per start (~30 s); the scale-free baseline covers those instances.
BF_MAXITER = 400


def _baseline(model, rng, restarts):
    """The better (larger gain) of :func:`brute_force_wpgd` and :func:`scale_free_baseline`."""
    w1 = brute_force_wpgd(model, restarts=restarts, rng=rng, maxiter=BF_MAXITER).omega
    w2 = scale_free_baseline(model, rng, restarts=restarts)
    return w1 if gain(model, w1) >= gain(model, w2) else w2


def _cos(u, v) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return float(abs(u @ v) / (nu * nv))


def curve_residual(model: MultitaskModel, omega) -> tuple[float, float]:
    """``(t, res)`` with ``t = phi(omega)`` and ``res = ||v - (r^T v / r^T r) r|| / ||v||``,
    ``v = (A + tB) omega``: 0 iff ``omega`` lies on the curve ``omega(t) ∝ (A + tB)^{-1} r`` at
    ``t = phi(omega)`` (the stationarity condition of claim L4)."""
    t = phi(model, omega)
    v = model.A @ omega + t * model.B_diag * omega
    r = model.r
    perp = v - (r @ v) / (r @ r) * r
    return float(t), float(np.linalg.norm(perp) / max(np.linalg.norm(v), 1e-300))


def curve_scan(model: MultitaskModel, points: int = SCAN_POINTS) -> tuple[float, float]:
    """Independent dense scan: ``max_t F(omega(t))`` over ``points`` log-spaced ``t`` in the
    bracket ``[1/lambda_max, 1/lambda_min]``, with ``omega(t)`` from a dense solve
    (:func:`numerics.landscape.omega_curve`). Returns ``(t_best, F_best)``."""
    lam = np.asarray(model.eigvals)
    ts = np.geomspace(1 / lam[-1], 1 / lam[0], points) if lam[-1] > lam[0] else np.array([1 / lam[0]])
    Fs = [gain(model, omega_curve(model, t)) for t in ts]
    i = int(np.argmax(Fs))
    return float(ts[i]), float(Fs[i])


def _conditions(model: MultitaskModel) -> dict:
    r_nonzero = bool(np.any(model.r != 0))
    B_pd = bool(np.all(model.B_diag > 0))
    return {"r_nonzero": r_nonzero, "B_pd": B_pd, "conditions_hold": r_nonzero and B_pd}


def _spec(model: MultitaskModel) -> dict:
    lam = np.asarray(model.eigvals)
    return {"n": model.n, "d": model.d, "cond_Sigma": float(lam[-1] / lam[0]), "sigma": model.sigma,
            "r_norm": float(np.linalg.norm(model.r)), "R_min_eig": float(np.linalg.eigvalsh(model.R)[0])}


# ============================================================================ L5
def evaluate_L5(model: MultitaskModel, rng: np.random.Generator, *, restarts: int = 4,
                solver: Callable = solve_wpgd) -> dict:
    r"""Existence/uniqueness figures of one instance (claim L5).

    Runs the certified solver and, independently, multistart L-BFGS on the profile risk
    (:func:`numerics.landscape.brute_force_wpgd`, ``restarts`` random starts from ``rng``)
    and a dense scan of ``J(t)`` along the curve. Returned keys: the model ``spec``,
    ``conditions`` (``r != 0``, ``B > 0``), ``unique``, ``num_fixed_points``,
    ``num_distinct_directions``, ``runner_up_rel_gap``, ``inactive_examples``,
    ``solver_gain``, ``bf_gain_excess`` = (F_bf - F_solver)/F_solver (> 0: the solver missed a
    better point), ``scan_gain_excess`` (same for the dense curve scan), ``cosine``
    (|cos| between solver and baseline directions), ``outcome``:

    * ``"unique"``: conditions hold, certificate unique, the baseline agrees;
    * ``"documented-non-unique"``: a condition fails (``r = 0``, or ``B_ii = 0`` i.e. ``R_ii = 0``
      and ``sigma = 0``) and the non-uniqueness is detected: ``r = 0`` -> certificate
      ``unique = False``; ``B_ii = 0`` -> ``inactive_examples > 0`` (``omega_i`` is arbitrary:
      ``y_i`` is identically 0). These are the documented counterexamples of L5, not new ones;
    * ``"non-unique"`` (counterexample to uniqueness): conditions hold but the certificate
      finds two directions whose gains differ by <= its tolerance, or the baseline reaches the
      same gain along a different direction;
    * ``"solver-worse"`` (certificate error): the baseline or the curve scan beats the solver
      by more than :data:`GAIN_TOL`;
    * ``"undetected-violation"``: a condition fails but nothing reports non-uniqueness.
    """
    t0 = time.perf_counter()
    cond = _conditions(model)
    sol = solver(model)
    cert = sol.certificate
    out: dict[str, Any] = {"spec": _spec(model), "conditions": cond,
                           "unique": bool(cert.get("unique", False)),
                           "num_fixed_points": int(cert.get("num_fixed_points", 0)),
                           "num_distinct_directions": int(cert.get("num_distinct_directions", 0)),
                           "runner_up_rel_gap": float(cert.get("runner_up_rel_gap", 0.0)),
                           "inactive_examples": int(cert.get("inactive_examples", 0))}
    if not cond["r_nonzero"]:
        out.update(solver_gain=0.0, bf_gain_excess=0.0, scan_gain_excess=0.0, cosine=float("nan"),
                   outcome="documented-non-unique" if not out["unique"] else "undetected-violation",
                   seconds=time.perf_counter() - t0)
        return out
    F_sol = gain(model, sol.omega)
    w_bf = _baseline(model, rng, restarts)
    F_bf = gain(model, w_bf)
    _, F_scan = curve_scan(model)
    scale = max(abs(F_sol), 1e-300)
    out.update(solver_gain=F_sol, bf_gain_excess=(F_bf - F_sol) / scale, scan_gain_excess=(F_scan - F_sol) / scale,
               cosine=_cos(sol.omega, w_bf), solver_risk=sol.risk, null_risk=null_risk(model), t=sol.t)
    if out["bf_gain_excess"] > GAIN_TOL or out["scan_gain_excess"] > GAIN_TOL:
        outcome = "solver-worse"
    elif not cond["B_pd"]:
        outcome = "documented-non-unique" if out["inactive_examples"] > 0 or not out["unique"] else \
            "undetected-violation"
    elif not out["unique"]:
        outcome = "non-unique"
    elif abs(out["bf_gain_excess"]) <= GAIN_TOL and 1 - out["cosine"] > DIRECTION_TOL:
        outcome = "non-unique"
    else:
        outcome = "unique"
    out["outcome"] = outcome
    out["seconds"] = time.perf_counter() - t0
    return out


# ============================================================================ L4
def evaluate_L4(model: MultitaskModel, rng: np.random.Generator, *, restarts: int = 4,
                solver: Callable = solve_wpgd) -> dict:
    r"""Curve property of one instance (claim L4): every global minimiser lies on
    ``omega(t) ∝ (A + tB)^{-1} r`` with ``t = phi(omega)`` in ``[1/lambda_max, 1/lambda_min]``.

    Figures: ``bf_residual`` / ``bf_t`` (:func:`curve_residual` of the multistart L-BFGS optimum,
    which never uses the curve), ``bf_in_bracket``, ``solver_curve_cosine`` (|cos| between the
    solver's omega and a dense solve ``(A + t*B)^{-1} r``), ``bf_gain_excess`` and
    ``scan_gain_excess`` (relative to the solver's gain). ``outcome``:

    * ``"on-curve"``: the baseline optimum is on the curve (residual <= :data:`CURVE_RESID_TOL`),
      t in the bracket, and nothing beats the curve maximum;
    * ``"off-curve-better"`` (counterexample): the baseline finds a point with a larger gain
      than the best curve point (by > :data:`GAIN_TOL`);
    * ``"off-curve-optimum"`` (counterexample): the baseline reaches the optimal gain (within
      :data:`GAIN_TOL`) at a point off the curve;
    * ``"out-of-bracket"`` (counterexample): ``phi`` of an optimum is outside the bracket;
    * ``"not-converged"``: the baseline is off the curve but strictly worse (a local search
      that stopped early; not evidence against the claim);
    * ``"conditions-violated"``: ``r = 0`` or ``B`` singular (L4 assumes both).
    """
    t0 = time.perf_counter()
    cond = _conditions(model)
    out: dict[str, Any] = {"spec": _spec(model), "conditions": cond}
    if not cond["conditions_hold"]:
        out.update(outcome="conditions-violated", seconds=time.perf_counter() - t0)
        return out
    lam = np.asarray(model.eigvals)
    lo, hi = 1 / lam[-1], 1 / lam[0]
    sol = solver(model)
    F_sol = gain(model, sol.omega)
    w_bf = _baseline(model, rng, restarts)
    F_bf = gain(model, w_bf)
    t_bf, res_bf = curve_residual(model, w_bf)
    _, F_scan = curve_scan(model)
    scale = max(abs(F_sol), 1e-300)
    in_br = bool(lo * (1 - 1e-12) <= t_bf <= hi * (1 + 1e-12))
    sol_in_br = bool(lo * (1 - 1e-12) <= sol.t <= hi * (1 + 1e-12))
    out.update(bf_residual=res_bf, bf_t=t_bf, bracket=[lo, hi], bf_in_bracket=in_br, solver_t=sol.t,
               solver_in_bracket=sol_in_br, solver_curve_cosine=_cos(sol.omega, omega_curve(model, sol.t)),
               bf_gain_excess=(F_bf - F_sol) / scale, scan_gain_excess=(F_scan - F_sol) / scale,
               cosine=_cos(sol.omega, w_bf))
    if max(out["bf_gain_excess"], out["scan_gain_excess"]) > GAIN_TOL:
        outcome = "off-curve-better" if res_bf > CURVE_RESID_TOL else "solver-worse"
    elif not (in_br and sol_in_br) or 1 - out["solver_curve_cosine"] > DIRECTION_TOL:
        outcome = "out-of-bracket" if not (in_br and sol_in_br) else "off-curve-optimum"
    elif res_bf > CURVE_RESID_TOL:
        outcome = "off-curve-optimum" if abs(out["bf_gain_excess"]) <= GAIN_TOL else "not-converged"
    else:
        outcome = "on-curve"
    out["outcome"] = outcome
    out["seconds"] = time.perf_counter() - t0
    return out


# ============================================================================ instances
def build_instance(p: dict) -> MultitaskModel:
    r"""Deterministic model from drawn parameters ``p`` (keys: ``seed``, ``n``, ``d``, ``R_kind``
    in {full, low-rank, near-singular, mixture}, ``rank``, ``K``, ``common``, ``S_kind`` in
    {spread, clustered, diagonal, isotropic}, ``log10_cond``, ``r_scale``, ``sigma``).

    ``log_var_spread = v > 0`` rescales example ``i``'s task by ``exp(U(-v, v))`` (unequal
    ``R_ii``). ``r_scale`` multiplies the query's row/column of ``R`` (``R -> D R D``, ``D =
    diag(1, .., 1, r_scale)``, PSD preserved): ``r -> r_scale r``. ``near-singular`` is a
    rank-deficient correlation plus ``1e-9 I`` (renormalised to unit diagonal);
    ``clustered`` puts the eigenvalues of ``Sigma`` in two clusters {1, 1/cond} with relative
    jitter 1e-6 (Haar-rotated).
    """
    rng = np.random.default_rng(p["seed"])
    n, d = p["n"], p["d"]
    kind = p["R_kind"]
    if kind == "full":
        R = random_correlation(n + 1, rng, common=p["common"])
    elif kind == "low-rank":
        R = random_correlation(n + 1, rng, rank=min(p["rank"], n + 1), common=p["common"])
    elif kind == "near-singular":
        C = random_correlation(n + 1, rng, rank=min(p["rank"], n + 1), common=p["common"]) + 1e-9 * np.eye(n + 1)
        s = 1 / np.sqrt(np.diag(C))
        R = C * s[:, None] * s[None, :]
        R = (R + R.T) / 2
        np.fill_diagonal(R, 1.0)
    elif kind == "mixture":
        K = min(p["K"], n)
        M = random_correlation(K + 1, rng, common=p["common"])
        cuts = np.sort(rng.choice(np.arange(1, n), size=K - 1, replace=False)) if K > 1 else np.array([], int)
        seg = np.repeat(np.arange(K), np.diff(np.concatenate([[0], cuts, [n]])))
        idx = np.append(seg, K)
        R = M[np.ix_(idx, idx)]
    else:
        raise ValueError(f"p: unknown R_kind {kind!r}")
    D = np.ones(n + 1)
    v = p.get("log_var_spread", 0.0)
    if v > 0:  # unequal task variances R_ii (the model allows any PSD R, not only correlations)
        D[:n] = np.exp(rng.uniform(-v, v, n))
    D[-1] = p["r_scale"]
    R = R * D[:, None] * D[None, :]
    cond = 10.0 ** max(p["log10_cond"] - (rng.uniform(0.0, 0.5) if p.get("jitter", True) else 0.0), 0.0)
    sk = p["S_kind"]
    if sk == "spread":
        S = random_covariance(d, rng, cond=cond)
    elif sk == "diagonal":
        S = random_covariance(d, rng, cond=cond, diagonal=True)
    elif sk == "isotropic":
        S = np.exp(rng.uniform(-2, 2)) * np.eye(d)
    elif sk == "clustered":
        lam = np.where(rng.random(d) < 0.5, 1.0, 1.0 / cond) * (1 + 1e-6 * rng.standard_normal(d))
        Q, Rq = np.linalg.qr(rng.standard_normal((d, d)))
        Q = Q * np.sign(np.diag(Rq))
        S = (Q * lam) @ Q.T
        S = (S + S.T) / 2
    else:
        raise ValueError(f"p: unknown S_kind {sk!r}")
    return MultitaskModel(R, S, p["sigma"])


def _strategy():
    """Instance parameters. Sizes, conditioning, noise and scales are drawn from lists with
    the hard values first: hypothesis' float/integer strategies favour "simple" values (0, 1,
    small n), which would leave ill-conditioned instances rare; ``build_instance`` adds a
    seeded jitter to ``log10_cond`` so conditioning is not restricted to the listed decades."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "seed": st.integers(0, 2 ** 32 - 1),
        "n": st.sampled_from([12, 8, 16, 5, 3, 2, 1]),
        "d": st.sampled_from([6, 4, 3, 2, 8, 1]),
        "R_kind": st.sampled_from(["near-singular", "low-rank", "mixture", "full"]),
        "rank": st.integers(1, 4),
        "K": st.integers(1, 4),
        "common": st.floats(0.0, 3.0),
        "S_kind": st.sampled_from(["spread", "clustered", "diagonal", "isotropic"]),
        "log10_cond": st.sampled_from([8.0, 7.0, 6.0, 4.0, 2.0, 1.0, 0.0]),
        "r_scale": st.sampled_from([1.0, 1e-6, 1e-2, 1e-4, 1.0]),
        "log_var_spread": st.sampled_from([0.0, 6.0, 1.0, 3.0, 0.0]),
        "sigma": st.sampled_from([0.0, 1e-8, 1e-4, 0.1, 1.0, 2.0]),
    })


def model_to_json(model: MultitaskModel) -> dict:
    return {"R": model.R.tolist(), "Sigma": model.Sigma.tolist(), "sigma": float(model.sigma)}


def model_from_json(obj: dict) -> MultitaskModel:
    """Inverse of :func:`model_to_json` (keys ``R``, ``Sigma``, ``sigma``); validates like the model."""
    for k in ("R", "Sigma", "sigma"):
        if k not in obj:
            raise ValueError(f"instance: missing key {k!r}")
    return MultitaskModel(np.asarray(obj["R"], float), np.asarray(obj["Sigma"], float), float(obj["sigma"]))


# ============================================================================ registry
@dataclass
class StressProperty:
    """A property search for one claim: ``evaluate(model, rng) -> dict`` with an ``outcome``;
    ``bad`` the outcomes that are counterexamples, ``good`` the outcomes consistent with the
    claim as documented (a saved regression expects one of these); ``targets(rec) -> {label: value}`` the
    figures hypothesis maximises; ``worst`` the figures summarised as (key, "max"|"min")."""
    claim_id: str
    description: str
    evaluate: Callable[..., dict]
    bad: tuple[str, ...]
    good: tuple[str, ...]
    targets: Callable[[dict], dict]
    worst: tuple[tuple[str, str], ...]


def _finite(x, default=0.0) -> float:
    x = float(x)
    return x if math.isfinite(x) else default


def _l5_targets(rec):
    gap = rec.get("runner_up_rel_gap", math.inf)
    return {"fixed points": float(rec.get("num_fixed_points", 0)),
            "-log10 runner-up gap": _finite(-math.log10(gap), -20.0) if gap > 0 else 300.0,
            "log10 solver deficit": math.log10(max(rec.get("bf_gain_excess", 0.0), rec.get("scan_gain_excess", 0.0),
                                                   1e-300))}


def _l4_targets(rec):
    return {"log10 bf residual": math.log10(max(rec.get("bf_residual", 0.0), 1e-300)),
            "log10 gain excess": math.log10(max(rec.get("bf_gain_excess", 0.0), 1e-300))}


PROPERTIES: dict[str, StressProperty] = {
    "L5": StressProperty(
        "L5", "existence/uniqueness up to scale: certificate vs multistart L-BFGS and a dense curve scan",
        evaluate_L5, ("non-unique", "solver-worse", "undetected-violation", "error"),
        ("unique", "documented-non-unique"), _l5_targets,
        (("num_fixed_points", "max"), ("runner_up_rel_gap", "min"), ("bf_gain_excess", "max"),
         ("scan_gain_excess", "max"), ("cosine", "min"), ("seconds", "max"))),
    "L4": StressProperty(
        "L4", "every global minimiser lies on the curve (A + tB)^{-1} r, t = phi in [1/lambda_max, 1/lambda_min]",
        evaluate_L4, ("off-curve-better", "off-curve-optimum", "out-of-bracket", "solver-worse", "error"),
        ("on-curve", "not-converged", "conditions-violated"), _l4_targets,
        (("bf_residual", "max"), ("bf_gain_excess", "max"), ("scan_gain_excess", "max"),
         ("solver_curve_cosine", "min"), ("seconds", "max"))),
}


def _instance_hash(model: MultitaskModel) -> str:
    blob = json.dumps(model_to_json(model), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def save_regression(claim_id: str, model: MultitaskModel, record: dict, folder=None) -> Path:
    """Write the instance and its figures to ``folder/<claim>_<hash>.json`` (atomically) and
    return the path. The hash is of the instance, so the same counterexample is saved once."""
    from .registry import jsonable
    from .report import atomic_write_text
    folder = Path(REGRESSION_DIR if folder is None else folder)
    path = folder / f"{claim_id}_{_instance_hash(model)}.json"
    # ``expected_outcomes``: what the regression test asserts once the finding is resolved (the
    # code fixed, or the claim given the missing condition and this list edited to match).
    obj = {"claim": claim_id, "outcome": record.get("outcome"),
           "expected_outcomes": list(PROPERTIES[claim_id].good) if claim_id in PROPERTIES else [],
           "instance": model_to_json(model),
           "figures": jsonable({k: v for k, v in record.items() if k != "params"}),
           "params": jsonable(record.get("params"))}
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
    return path


def run_stress(claim_id: str, *, examples: int, seed: int, progress: Callable[[str], None] | None = None,
               instances: list[MultitaskModel] | None = None, solver: Callable | None = None,
               save_dir=None, save: bool = True) -> dict:
    r"""Search for counterexamples to ``claim_id``'s stress property.

    ``instances`` (optional) are evaluated first, verbatim (e.g. a known counterexample or a
    deliberately violating instance), then ``examples`` instances drawn by hypothesis with
    seed ``seed``. ``solver`` (default: this module's ``solve_wpgd``, looked up at call time)
    replaces :func:`numerics.landscape.solve_wpgd` (tests inject a faulty solver to check that
    errors are caught). Counterexamples are saved under
    ``save_dir`` (default :data:`REGRESSION_DIR`) unless ``save=False``.

    Returns the summary: ``claim``, ``examples`` (evaluated, incl. injected), ``seed``,
    ``counts`` per outcome, ``worst`` figures (with the instance parameters where they
    occurred), ``counterexamples`` (each with the instance as JSON ``R, Sigma, sigma`` and
    its figures, plus ``saved`` path), ``seconds``.
    """
    from hypothesis import HealthCheck, Phase, given, settings, target
    from hypothesis import seed as hseed

    if claim_id not in PROPERTIES:
        raise KeyError(f"no stress property for claim {claim_id!r}; available: {', '.join(PROPERTIES)}")
    if isinstance(examples, bool) or int(examples) != examples or examples < 0:
        raise ValueError(f"examples: must be an integer >= 0, got {examples!r}")
    prop = PROPERTIES[claim_id]
    solver = solve_wpgd if solver is None else solver  # looked up at call time (tests patch it)
    records: list[dict] = []
    models: list[MultitaskModel] = []
    t0 = time.perf_counter()
    last = [t0]

    def record(model, params, rng):
        try:
            rec = prop.evaluate(model, rng, solver=solver)
        except Exception as exc:  # a crash on a valid instance is a finding, not a reason to stop
            rec = {"spec": _spec(model), "conditions": _conditions(model), "outcome": "error",
                   "error": f"{type(exc).__name__}: {exc}"}
        rec["params"] = params
        records.append(rec)
        models.append(model)
        now = time.perf_counter()
        if progress is not None and (now - last[0] > 2.0 or len(records) % 50 == 0):
            last[0] = now
            bad = sum(r["outcome"] in prop.bad for r in records)
            progress(f"{claim_id}: {len(records)} examples, {bad} counterexample(s), {now - t0:.1f}s")
        return rec

    for j, m in enumerate(instances or []):
        record(m, {"injected": j}, np.random.default_rng([seed, j]))

    if examples > 0:
        @hseed(int(seed))
        @settings(max_examples=int(examples), database=None, deadline=None, derandomize=False,
                  phases=[Phase.generate, Phase.target], suppress_health_check=list(HealthCheck),
                  print_blob=False)
        @given(_strategy())
        def search(p):
            m = build_instance(p)
            rec = record(m, dict(p), np.random.default_rng(p["seed"]))
            for label, v in prop.targets(rec).items():
                target(float(v), label=label)

        search()

    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    worst = {}
    for key, how in prop.worst:
        vals = [(r[key], i) for i, r in enumerate(records) if key in r and math.isfinite(r[key])]
        if not vals:
            continue
        v, i = max(vals) if how == "max" else min(vals)
        worst[f"{how}_{key}"] = {"value": v, "outcome": records[i]["outcome"], "spec": records[i]["spec"],
                                 "params": records[i]["params"]}
    cex = []
    for r, m in zip(records, models):
        if r["outcome"] in prop.bad:
            item = {"outcome": r["outcome"], "instance": model_to_json(m),
                    "figures": {k: v for k, v in r.items() if k != "params"}, "params": r["params"]}
            if save:
                item["saved"] = str(save_regression(claim_id, m, r, save_dir))
            cex.append(item)
    cond_ok = [r for r in records if r["conditions"]["conditions_hold"]]
    specs = [r["spec"] for r in records]
    # how many examples fall in each hard regime (an example can be in several)
    coverage = {"cond_Sigma>=1e4": sum(s["cond_Sigma"] >= 1e4 for s in specs),
                "cond_Sigma>=1e7": sum(s["cond_Sigma"] >= 1e7 for s in specs),
                "|r|<=1e-3": sum(s["r_norm"] <= 1e-3 for s in specs),
                "sigma<=1e-4": sum(s["sigma"] <= 1e-4 for s in specs),
                "R_min_eig<=1e-8": sum(s["R_min_eig"] <= 1e-8 for s in specs),
                "n>=8": sum(s["n"] >= 8 for s in specs), "d>=4": sum(s["d"] >= 4 for s in specs)}
    return {"claim": claim_id, "property": prop.description, "examples": len(records), "seed": int(seed),
            "requested_examples": int(examples), "injected": len(instances or []),
            "conditions_hold": len(cond_ok), "coverage": coverage, "counts": counts, "bad_outcomes": list(prop.bad),
            "worst": worst, "counterexamples": cex, "seconds": time.perf_counter() - t0}


def format_summary(summary: dict) -> str:
    """The summary as a terminal table (counts, then worst figures, then counterexamples)."""
    lines = [f"stress {summary['claim']}: {summary['property']}",
             f"examples: {summary['examples']} (injected {summary['injected']}, seed {summary['seed']}), "
             f"conditions hold on {summary['conditions_hold']}, {summary['seconds']:.1f}s",
             "coverage: " + ", ".join(f"{k}: {v}" for k, v in summary.get("coverage", {}).items()), "",
             f"{'outcome':<24} {'count':>6}  counterexample?"]
    for k, v in sorted(summary["counts"].items()):
        lines.append(f"{k:<24} {v:>6}  {'YES' if k in summary['bad_outcomes'] else 'no'}")
    lines += ["", f"{'worst figure':<28} {'value':>12}  instance"]
    for k, w in summary["worst"].items():
        s = w["spec"]
        lines.append(f"{k:<28} {float(w['value']):>12.3e}  n={s['n']} d={s['d']} cond={s['cond_Sigma']:.1e} "
                     f"sigma={s['sigma']:.2g} |r|={s['r_norm']:.1e} ({w['outcome']})")
    if summary["counterexamples"]:
        lines += ["", f"{len(summary['counterexamples'])} COUNTEREXAMPLE(S):"]
        for c in summary["counterexamples"]:
            lines.append(json.dumps({"outcome": c["outcome"], **c["instance"]}))
            if "saved" in c:
                lines.append(f"  saved to {c['saved']}")
    else:
        lines += ["", "no counterexample found"]
    return "\n".join(lines)
