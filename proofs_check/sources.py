"""What the claims rest on, quoted, so a claim's ``source`` never cites what the project has not read.

The project has read the abstract of the paper (Li et al., "Gating is Weighting: Understanding
Gated Linear Attention through In-context Learning", COLM 2025), not its full text. A claim's
source is therefore one of: the abstract, with the sentence the claim paraphrases quoted
(:func:`abstract`); a named prior result; or :data:`DERIVED_HERE`.

>>> abstract(GLA_IS_WPGD).startswith('Li et al. 2025, abstract: "We show that a multilayer GLA')
True
"""

from __future__ import annotations

from .notation import ABSTRACT_SENTENCES

__all__ = [
    "PAPER",
    "GLA_IS_WPGD",
    "WEIGHTS_FROM_GATES",
    "LANDSCAPE",
    "UNIQUE_MINIMUM",
    "GLA_LANDSCAPE",
    "AHN_2023",
    "DERIVED_HERE",
    "abstract",
]

PAPER = "Li et al. 2025 (Gating is Weighting, COLM 2025)"

#: Sentences of the paper's abstract, verbatim (quoted once, in :data:`proofs_check.notation.ABSTRACT_SENTENCES`).
GLA_IS_WPGD, WEIGHTS_FROM_GATES, LANDSCAPE, UNIQUE_MINIMUM, GLA_LANDSCAPE = (
    s for s, _ in ABSTRACT_SENTENCES
)

#: A named prior result: the optimum of one-layer linear attention on single-task Gaussian
#: linear regression is one step of preconditioned gradient descent.
AHN_2023 = (
    "Ahn et al. 2023 (Transformers learn to implement preconditioned gradient descent for in-context "
    "learning, NeurIPS 2023): one-layer linear attention on a single task is optimally one step of "
    "preconditioned gradient descent"
)

DERIVED_HERE = "derived here"


def abstract(*sentences: str) -> str:
    """``Li et al. 2025, abstract: "<sentence> <sentence>"``."""
    return 'Li et al. 2025, abstract: "' + " ".join(sentences) + '"'
