r"""L3: scale invariance ``(P, ω) → (P/s, sω)``, sign included.

Theory leg: :func:`theory.stationarity.check_L3`. Numerics leg: the risk, the profile risk
and ``P*`` at random scales of both signs.
"""

from __future__ import annotations

import numpy as np

from numerics.risk import optimal_P, profile_risk, wpgd_risk
from theory import stationarity as st

from .. import general_proofs, sources, tolerances as tol
from ..instances import random_model
from ..registry import Claim, compare, symbolic

__all__ = ["CLAIM"]

CLAIM = Claim(
    id="L3",
    area="landscape",
    title=r"Scale invariance $(P,\omega)\mapsto(P/s,s\omega)$",
    statement=(
        r"$L(P/s,s\omega)=L(P,\omega)$ for every $s\neq0$, including $s<0$; the profile risk is homogeneous "
        r"of degree $0$ in $\omega$ and $P^*(s\omega)=P^*(\omega)/s$. Minimisers are therefore at best unique "
        r"up to a non-zero scale, sign included."
    ),
    conditions=(r"$s\ne0$",),
    source=sources.abstract(sources.UNIQUE_MINIMUM),
    status_note=(
        'First posed as "unique at best up to scale": $(-P,-\\omega)$ is always a second '
        r"minimiser. For gates ($\omega\ge0$) the representative with $\omega\ge0$ is the "
        "relevant one, if it exists."
    ),
    formulas=st.formulas,
    verdict="with-condition",
    verdict_condition=(
        r"the scale $s$ ranges over every $s\ne0$, negative included: the optimum is unique "
        "only up to a signed scale"
    ),
)


@CLAIM.check(
    "Matrix engine: scale invariance, profile of degree 0, P* scaling (symbolic dimensions)",
    leg="theory",
)
def _general(ctx):
    return general_proofs.evidence(ctx, "L3")


@CLAIM.check("SymPy: full L1 formula invariant; profile degree 0; P* scaling", leg="theory")
def _theory(ctx):
    return symbolic("SymPy: L(P/s, s omega) = L(P, omega), s != 0", st.check_L3())


@CLAIM.check("risk at (P/s, s omega) vs (P, omega), random s of both signs", leg="numerics")
def _numerics(ctx):
    rng = ctx.rng("l3")
    out = []
    for n, d, cond in [(7, 3, 10.0), (12, 5, 1e6)]:
        m, spec = random_model(rng, n, d, cond=cond, sigma=0.2)
        om = rng.standard_normal(n)
        P = rng.standard_normal((d, d))
        s = rng.choice([-1, 1], 6) * np.exp(rng.uniform(-3, 3, 6))
        base = wpgd_risk(m, P, om)
        out.append(
            compare(
                f"wpgd_risk(P/s, s omega) vs wpgd_risk(P, omega) (n={n}, d={d}, cond={cond:g})",
                [wpgd_risk(m, P / si, si * om) for si in s],
                np.full(s.size, base),
                tol.SCALE_INVARIANCE,
                scales=s,
                **spec,
            )
        )
        out.append(
            compare(
                f"profile_risk(s omega) vs profile_risk(omega) (n={n}, d={d})",
                [profile_risk(m, si * om) for si in s],
                np.full(s.size, profile_risk(m, om)),
                tol.SCALE_INVARIANCE,
                scales=s,
                **spec,
            )
        )
        out.append(
            compare(
                f"s P*(s omega) vs P*(omega) (n={n}, d={d})",
                np.array([si * optimal_P(m, si * om) for si in s]),
                np.array([optimal_P(m, om)] * s.size),
                tol.SCALE_INVARIANCE,
                scales=s,
                **spec,
            )
        )
    return out
