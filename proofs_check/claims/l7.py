r"""L7: K independent tasks give block-constant weights ``ρ_k/(m_k + 1 + d + σ²)``.

Theory leg: :func:`theory.stationarity.check_L7`. Numerics leg:
:func:`numerics.landscape.solve_wpgd` against the closed form.
"""

from __future__ import annotations

import numpy as np

from numerics.data import MultitaskModel
from numerics.landscape import solve_wpgd
from numerics.measures import cosine
from theory import stationarity as st

from .. import general_proofs, sources, tolerances as tol
from ..registry import Claim, compare, symbolic

__all__ = ["CLAIM"]

CLAIM = Claim(
    id="L7",
    area="landscape",
    title=r"$K$ independent tasks: block-constant weights $\rho_k/(m_k+1+d+\sigma^2)$",
    statement=(
        r"For $K$ segments of lengths $m_k$ with independent unit-variance tasks ($\Gamma=I$), query "
        r"correlations $\rho_k$ and $\Sigma=I_d$: $\omega^*$ is constant on each segment and "
        r"$\omega^*_k\propto\rho_k/(m_k+1+d+\sigma^2)$."
    ),
    conditions=(
        r"independent unit-variance tasks ($\Gamma=I$)",
        r"$\Sigma=I_d$",
    ),
    source=sources.DERIVED_HERE + " (an instance of " + sources.abstract(sources.LANDSCAPE) + ")",
    status_note=(
        r"The $+1$ is the fourth-moment term $\mathrm{diag}(R_{ii})$ in $A$. A negative "
        "$\\rho_k$ gives a negative weight, which scalar gates cannot produce (see G1)."
    ),
    formulas=st.formulas,
    verdict="as-stated",
)


@CLAIM.check(
    "Matrix engine: K independent tasks: block closed form (symbolic dimensions)", leg="theory"
)
def _general(ctx):
    return general_proofs.evidence(ctx, "L7")


@CLAIM.check(
    "SymPy: closed form for m = (1,2), (2,1,3), gradient zero, symbolic-m block identity",
    leg="theory",
)
def _theory(ctx):
    return symbolic("SymPy: K independent tasks", st.check_L7())


@CLAIM.check("solve_wpgd vs rho_k/(m_k + 1 + d + sigma^2)", leg="numerics")
def _numerics(ctx):
    rng = ctx.rng("l7")
    out = []
    cases = [((3, 5, 2), 4, 0.5), ((1, 8, 4, 6), 6, 0.0), ((10, 1), 3, 1.3)]
    if ctx.full:
        cases += [((50, 20, 5, 100, 1), 16, 0.2)]
    for mseg, d, sigma in cases:
        K = len(mseg)
        rho = rng.uniform(-1, 1, K)
        rho *= 0.95 / max(np.linalg.norm(rho), 1.0)  # ||rho|| < 1 keeps R PSD with query_var = 1
        m = MultitaskModel.k_task(
            np.array(mseg), np.eye(K), rho, np.eye(d), sigma=sigma, query_var=1.0
        )
        sol = solve_wpgd(m)
        ref = np.repeat(rho / (np.array(mseg) + 1 + d + sigma**2), mseg)
        ref_n = ref / np.linalg.norm(ref) * np.sign(m.r @ ref)
        spec = {"m": list(mseg), "rho": rho, "d": d, "sigma": sigma, "n": int(sum(mseg))}
        out.append(
            compare(
                f"omega* vs closed form after normalisation (m={mseg}, d={d})",
                sol.omega,
                ref_n,
                tol.IDENTITY,
                cosine=cosine(sol.omega, ref, absolute=True),
                unique=sol.certificate["unique"],
                **spec,
            )
        )
    return out
