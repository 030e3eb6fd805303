r"""L6: a single task gives constant weights and the linear-attention preconditioner.

Theory leg: :func:`theory.stationarity.check_L6`. Numerics leg: :func:`numerics.landscape.solve_wpgd`
against the closed form (scale-aligned), and Monte Carlo of the closed-form optimum's risk.
"""

from __future__ import annotations

import numpy as np

from numerics.data import MultitaskModel, random_covariance
from numerics.landscape import solve_wpgd
from numerics.risk import wpgd_predictor, wpgd_risk
from theory import stationarity as st

from .. import general_proofs, sources, tolerances as tol
from ..checks import mc_prompts, monte_carlo
from ..registry import Claim, compare, symbolic

__all__ = ["CLAIM"]

CLAIM = Claim(
    id="L6",
    area="landscape",
    title="Single task: constant weights and the linear-attention preconditioner",
    statement=(
        r"For $R=\mathbf 1\mathbf 1^\top$ (one task), $\omega^*\propto\mathbf 1$ is the unique minimiser up to "
        r"scale and, for the representative $\omega=\mathbf 1$, "
        r"$P^*=\big((n+1)\Sigma+(\mathrm{tr}\,\Sigma+\sigma^2)I\big)^{-1}$; for $\omega=s\mathbf 1$, "
        r"$P^*=P^*(\mathbf 1)/s$."
    ),
    conditions=(r"$R=\mathbf 1\mathbf 1^\top$ (every example and the query share one task)",),
    source=sources.AHN_2023 + r"; the noisy closed form $P^*$ derived here",
    status_note=(
        r"$P^*$ as first posed is the $\omega=\mathbf 1$ representative; the product "
        r"$P\omega^\top$ is what is scale-free."
    ),
    formulas=st.formulas,
    verdict="as-stated",
    cost_full=16,  # full-profile CPU seconds, pieces included (scheduling hint)
)


@CLAIM.check(
    "Matrix engine: single task: omega* ~ 1 unique up to scale, P*(1) (symbolic dimensions)",
    leg="theory",
)
def _general(ctx):
    return general_proofs.evidence(ctx, "L6")


@CLAIM.check(
    "SymPy: curve constant (n = 1..5), gradient zero at 1, P*(1), symbolic n", leg="theory"
)
def _theory(ctx):
    res = st.check_L6(n_values=(1, 2, 3) if not ctx.full else (1, 2, 3, 4, 5, 6))
    return symbolic("SymPy: single-task optimum", res)


@CLAIM.check(
    "solve_wpgd vs closed form (omega ~ 1, scale-aligned P omega^T) and Monte Carlo of its risk",
    leg="numerics",
)
def _numerics(ctx):
    rng = ctx.rng("l6")
    out = []
    N = mc_prompts(ctx.full)
    cases = [(7, 4, 50.0, 0.0), (12, 5, 1e4, 0.8)] + ([(40, 8, 1e7, 0.3)] if ctx.full else [])
    for n, d, cond, sigma in cases:
        S = random_covariance(d, rng, cond=cond)
        m = MultitaskModel.single_task(n, S, sigma)
        spec = {"n": n, "d": d, "cond": cond, "sigma": sigma}
        sol = solve_wpgd(m)
        one = np.ones(n)
        P1 = np.linalg.inv((n + 1) * S + (np.trace(S) + sigma**2) * np.eye(d))
        out.append(
            compare(
                f"omega* vs 1/sqrt(n) (n={n}, d={d}, cond={cond:g})",
                sol.omega,
                one / np.sqrt(n),
                tol.IDENTITY,
                unique=sol.certificate["unique"],
                **spec,
            )
        )
        # P and omega are only defined up to (P/s, s omega): compare the invariant product
        out.append(
            compare(
                f"P* omega*^T vs P*(1) 1^T (scale-aligned) (n={n}, d={d})",
                np.einsum("ij,k->ijk", sol.P, sol.omega),
                np.einsum("ij,k->ijk", P1, one),
                tol.IDENTITY,
                **spec,
            )
        )
        out.append(
            compare(
                f"solver risk vs wpgd_risk(P*(1), 1) (n={n}, d={d})",
                sol.risk,
                wpgd_risk(m, P1, one),
                tol.IDENTITY,
                **spec,
            )
        )
        out.append(
            monte_carlo(
                f"MC risk of the closed-form optimum (n={n}, d={d}, cond={cond:g})",
                m,
                wpgd_predictor(P1, one),
                wpgd_risk(m, P1, one),
                N,
                rng,
                spec,
            )
        )
    return out
