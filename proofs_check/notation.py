r"""The project's own statement of the setting and its notation: one source for the docs.

This module is the single source of

* the setting (prompts, the GLA layer, the gating kinds, WPGD, the multitask data model,
  structured ``K``-task prompts and the weights gates can reach): :data:`SETTING`;
* the symbol table, one row ``(symbol, LaTeX, meaning)`` per symbol used in a claim
  statement, in the docs or in the generated appendix: :data:`SYMBOLS`;
* the sources the claims rest on: :data:`SOURCES` and the abstract sentences in
  :data:`ABSTRACT_SENTENCES`.

``docs/theory.md`` is generated from it together with the fields of every registered claim
(``id``, ``title``, ``statement``, optional ``conditions``, ``source``, ``status_note``), so
the statements there are exactly the ones ``gla-verify`` checks; the appendix's notation
section is rendered from the same table. Regenerate the page with::

    gla-verify theory --out docs/theory.md        # or: --check docs/theory.md
    python -m proofs_check.notation --out docs/theory.md                # the same

Text is Markdown with inline LaTeX between ``$...$``; :func:`md_to_tex` turns it into LaTeX
for the appendix (``$...$`` kept, the rest escaped).

>>> sym = symbol("omega")
>>> (sym.symbol, sym.latex)
('ω', '\\omega')
>>> "\\omega" in covered_tokens()
True
>>> sorted(math_tokens(r"$\omega_i=\prod_{j>i} g_j$"))
['\\omega', 'g', 'i', 'j']
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ABSTRACT_SENTENCES",
    "SETTING",
    "SOURCES",
    "SYMBOLS",
    "Section",
    "Symbol",
    "covered_tokens",
    "main",
    "math_tokens",
    "md_to_tex",
    "plain_text",
    "render_notation_md",
    "render_notation_tex",
    "render_theory_md",
    "symbol",
    "theory_page",
]


@dataclass(frozen=True)
class Section:
    """A section of the setting: a title and Markdown paragraphs (inline math in ``$...$``)."""

    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Symbol:
    """One row of the symbol table.

    ``symbol``: the plain (Unicode) form used in docs and terminal output; ``latex``: the
    LaTeX form used in claim statements and the appendix; ``meaning``: Markdown with inline
    ``$...$`` math; ``code``: the name in code, where there is one.
    """

    symbol: str
    latex: str
    meaning: str
    code: str = ""


# ----------------------------------------------------------------------------- sources

#: The sources the claims and the setting rest on, as ``(name, reference)``; ``name`` is the
#: string a claim's ``source`` uses. The paper's full text has not been consulted: only its
#: abstract, quoted in :data:`ABSTRACT_SENTENCES`. No section, equation or theorem number of
#: any text is cited anywhere in the project.
SOURCES: tuple[tuple[str, str], ...] = (
    (
        "Li et al. 2025",
        "Y. Li, D. Ataee Tarzanagh, A. S. Rawat, M. Fazel, S. Oymak, *Gating is Weighting: Understanding "
        "Gated Linear Attention through In-context Learning*, COLM 2025. The project has read its "
        "abstract, not its full text; the claims that rest on it quote the sentence they make precise.",
    ),
    (
        "Ahn et al. 2023",
        "K. Ahn, X. Cheng, H. Daneshmand, S. Sra, *Transformers learn to implement preconditioned "
        "gradient descent for in-context learning*, NeurIPS 2023: the optimum of one-layer linear "
        "attention on single-task Gaussian linear regression is one step of preconditioned gradient "
        "descent. Claim L6 is that case; its closed form is derived and checked here.",
    ),
    (
        "Yang et al. 2024",
        "S. Yang, B. Wang, Y. Shen, R. Panda, Y. Kim, *Gated Linear Attention Transformers with "
        "Hardware-Efficient Training*, ICML 2024: the key-wise (vector) gated recurrence of the setting.",
    ),
    (
        "derived here",
        "a derivation in this repository (SymPy in `theory/`, the topic pages in `docs/`), checked by "
        "an independent numerical leg in `numerics/`.",
    ),
)

#: The sentences of the paper's abstract the claims paraphrase, as ``(sentence, topic)``, in the
#: abstract's order. Quoted verbatim, here only (:mod:`proofs_check.sources` unpacks them);
#: everything else in the project is in its own words. Which claims quote a sentence is read
#: from the claims' ``source`` fields.
ABSTRACT_SENTENCES: tuple[tuple[str, str], ...] = (
    (
        "We show that a multilayer GLA can implement a general class of Weighted Preconditioned "
        "Gradient Descent (WPGD) algorithms with data-dependent weights.",
        "GLA implements WPGD",
    ),
    (
        "These weights are induced by the gating mechanism and the input, enabling the model to "
        "control the contribution of individual tokens to prediction.",
        "weights from the gates",
    ),
    (
        "To further understand the mechanics of this weighting, we introduce a novel data model with "
        "multitask prompts and characterize the optimization landscape of learning a WPGD algorithm.",
        "the WPGD landscape",
    ),
    (
        "We identify mild conditions under which there exists a unique global minimum, up to scaling "
        "invariance, and the associated WPGD algorithm is unique as well.",
        "a unique minimum up to scale",
    ),
    (
        "Finally, we translate these findings to explore the optimization landscape of GLA and shed "
        "light on how gating facilitates context-aware learning and when it is provably better than "
        "vanilla linear attention.",
        "the GLA landscape",
    ),
)


# ----------------------------------------------------------------------------- setting

SETTING: tuple[Section, ...] = (
    Section(
        "Scope",
        (
            "gla-verify checks a body of claims about gated linear attention (GLA) as an in-context "
            "learner: one GLA layer computes one step of weighted preconditioned gradient descent "
            "(WPGD) whose weights come from the gates; the population risk of WPGD on multitask "
            "prompts has a global minimiser under conditions found here, unique up to scale exactly "
            "when a one-dimensional reduction has a unique maximiser (so in every instance searched; "
            "not proved in general); scalar gating "
            "(with distinct delimiters between tasks) reaches that minimiser exactly when the optimal "
            "weights are of a form gates can produce (of one sign, and nondecreasing in magnitude "
            "toward the query), and it beats linear attention unless "
            "constant weights are already the best of that form. Claims G5 (depth) and G6 (trained "
            "models) are the project's own questions, beyond what the abstract states.",
            "The claims are the project's own statements. The paper that motivates them was read "
            "through its abstract only (see *Sources*); where a claim was first posed in a form the "
            "suite found wrong or incomplete, the statement below is the corrected one and a note "
            "says what changed (collected in `docs/findings.md`).",
            "Every claim is checked by two independent legs: **theory** (a SymPy derivation, proved "
            "as a polynomial or rational identity on the stated sizes) and **numerics** (NumPy, SciPy "
            "or cvxpy: another implementation, a closed form, a Monte Carlo estimate with error bars, "
            "or a certified optimum). Conventions of shapes and signs are in `docs/conventions.md`.",
        ),
    ),
    Section(
        "Prompts",
        (
            "A prompt holds $n$ in-context examples $(x_i, y_i)$, $x_i\\in\\mathbb R^d$, $y_i\\in\\mathbb R$, "
            "and a query $x$ whose label $y$ is to be predicted. As tokens: $z_i=[x_i;y_i]\\in\\mathbb R^{d+1}$ "
            "for $i\\le n$ and $z_{n+1}=[x;0]$ (the label slot of the query is 0). The query is token "
            "$n+1$, the last one. In code the label is the last coordinate (0-based index $d$) and "
            "arrays are batch-first, $Z$ of shape $(N, n+1, d+1)$ for $N$ prompts.",
        ),
    ),
    Section(
        "The GLA layer and the gating kinds",
        (
            "One GLA layer maps tokens $z_1,\\dots,z_T$ to outputs $o_1,\\dots,o_T$ with "
            "$q_t=W_qz_t$, $k_t=W_kz_t$, $v_t=W_vz_t$ and the recurrence "
            "$S_t=G_t\\odot S_{t-1}+v_tk_t^\\top$, $S_0=0$, $o_t=S_tq_t$ (scale 1). Every token "
            "attends to itself: unrolled, $S_t=\\sum_{s\\le t}(\\prod_{r=s+1}^{t}G_r)\\odot v_sk_s^\\top$, "
            "and the empty product for $s=t$ is 1. The gate $G_t$ has entries in $[0,1]$ and depends "
            "on token $t$ only.",
            "**Scalar gating**: $G_t=g_t\\mathbf 1\\mathbf 1^\\top$, one number $g_t\\in[0,1]$ per token. "
            "**Key-wise (vector) gating**: $G_t=\\mathbf 1\\gamma_t^\\top$, $\\gamma_t\\in[0,1]^{D_k}$, one "
            "gate per key coordinate (the columns of $S_t$), as in the GLA of Yang et al. 2024. "
            "**Value-wise gating** $G_t=\\gamma_t\\mathbf 1^\\top$ acts on the rows; it appears only in "
            "the state formula of C1. **Linear attention** is $G_t\\equiv\\mathbf 1\\mathbf 1^\\top$.",
            "The engines keep gates as log-gates $\\log g_t\\le0$ ($-\\infty$ is a closed gate), so that "
            "long products of gates neither underflow nor lose precision: the decay from token $s$ to "
            "token $t\\ge s$ is $\\exp(c_t-c_s)$ with $c_t=\\sum_{r\\le t}\\log g_r$.",
            "A stack of $L$ layers is residual: $Z_{\\ell+1}=Z_\\ell+\\mathrm{GLA}_\\ell(Z_\\ell)$, "
            "$\\ell=0,\\dots,L-1$; it is causal by construction.",
        ),
    ),
    Section(
        "Weighted preconditioned gradient descent (WPGD)",
        (
            "One WPGD step from zero with preconditioner $P\\in\\mathbb R^{d\\times d}$ and weights "
            "$\\omega\\in\\mathbb R^n$ predicts $\\hat y=x^\\top PX^\\top(\\omega\\odot y)=x^\\top P\\sum_i\\omega_iy_ix_i$, "
            "where $X$ stacks the $x_i^\\top$ as rows. Here the query does not attend to itself, the sign "
            "is $+$ and the scale 1. With **feature-wise** weights $\\Omega\\in\\mathbb R^{n\\times d}$ "
            "(row $\\Omega_i$): $\\hat y=x^\\top P\\sum_iy_i(\\Omega_i\\odot x_i)$; $\\Omega_i=\\omega_i\\mathbf 1$ "
            "is the scalar case.",
            "**Construction.** With $W_q=[P_q\\ 0;0\\ 0]$, $W_k=[P_k\\ 0;0\\ 0]$, $W_v=[0\\ 0;0\\ 1]$ "
            "and the read-out $\\hat y=e_{d+1}^\\top o_{n+1}$ (the label coordinate of the query's output), "
            "one scalar-gated layer is one WPGD step with $P=P_q^\\top P_k$ and "
            "$\\omega_i=\\prod_{j=i+1}^{n+1}g_j$ (claim C1): the query's own gate $g_{n+1}$ multiplies "
            "every weight, and linear attention gives $\\omega=\\mathbf 1$. Key-wise gates give "
            "feature-wise weights in the basis of the keys $P_kx_i$ (C2).",
            "**Causal WPGD.** In a residual stack with $W_v=[0\\ 0;0\\ -1]$ every token $i$ carries "
            "its own iterate $w^{(i)}_\\ell$, and the label slots become residuals "
            "$y^{(\\ell)}_i=y_i-x_i^\\top w^{(i)}_\\ell$; the update sums over $j\\le i$, including the query "
            "itself when $i=n+1$ (the query's *self-term*). The read-out is "
            "$\\hat y=-e_{d+1}^\\top z^{(L)}_{n+1}=x^\\top w^{(n+1)}_L$ (C3). Ordinary multi-step WPGD, "
            "with one shared iterate, is a different algorithm for $L\\ge2$.",
        ),
    ),
    Section(
        "The multitask data model",
        (
            "Features $x_i,x\\sim\\mathcal N(0,\\Sigma)$ i.i.d. with $\\Sigma\\succ0$. Task vectors "
            "$\\beta_1,\\dots,\\beta_n,\\beta_{n+1}=\\beta$ are jointly Gaussian with zero mean and "
            "$E[\\beta_i\\beta_j^\\top]=R_{ij}I_d$, $R\\succeq0$ of size $n+1$ (example $i$ may follow a "
            "different task from the query). Labels $y_i=x_i^\\top\\beta_i+\\xi_i$ and $y=x^\\top\\beta+\\xi$ "
            "with noise $\\xi_i,\\xi\\sim\\mathcal N(0,\\sigma^2)$: the query label is noisy too, so no "
            "predictor goes below $\\sigma^2$.",
            "The risk is $L=E(y-\\hat y)^2$ (no factor $1/2$). For WPGD it depends on the data only "
            "through $r=(R_{i,n+1})_{i\\le n}$ (how much each example's task tells about the query's), "
            "$A=R_{[n],[n]}+\\mathrm{diag}(R_{ii})$ (the $\\mathrm{diag}$ term is the Gaussian "
            "fourth moment), $B=\\mathrm{diag}(R_{ii}\\,\\mathrm{tr}\\,\\Sigma+\\sigma^2)$, and the "
            "eigenvalues $\\lambda_k$ of $\\Sigma$, via the scalars $a=r^\\top\\omega$, "
            "$b=\\omega^\\top A\\omega$, $c=\\omega^\\top B\\omega$ (L1). Minimising over $P$ leaves the "
            "*profile risk* $L(\\omega)=\\min_PL(P,\\omega)$ (L2), which is invariant under "
            "$\\omega\\to s\\omega$ for every $s\\neq0$ (L3); $L^*_{WPGD}=\\min_{P,\\omega}L$.",
            "The minimisers are found on the curve $\\omega(t)\\propto(A+tB)^{-1}r$, $t>0$, at a fixed "
            "point of $t\\mapsto\\varphi(\\omega(t))$, where $\\varphi$ is a weighted mean of the "
            "$1/\\lambda_k$ (L4); the one-dimensional reduction $J(t)$ along the curve decides "
            "uniqueness (L5).",
        ),
    ),
    Section(
        "K-task prompts and the weights gates can reach",
        (
            "A **K-task prompt** has $K$ segments; segment $k$ holds $m_k$ consecutive examples of one "
            "task, $n=\\sum_km_k$. Tasks are correlated as $E[\\beta^{(k)}\\beta^{(l)\\top}]=\\Gamma_{kl}I_d$ "
            "and with the query's task as $E[\\beta^{(k)}\\beta^\\top]=\\rho_kI_d$; so "
            "$R_{ij}=\\Gamma_{k(i)k(j)}$ and $r_i=\\rho_{k(i)}$. Independent tasks means $\\Gamma=I$. "
            "Block weights $u\\in\\mathbb R^K$ act as $\\omega=Eu$, with $E\\in\\{0,1\\}^{n\\times K}$ the "
            "segment-membership matrix.",
            "**Structural channels.** A prompt may carry *delimiter* tokens (a vector after each segment: "
            "the same one for all segments, *shared*, or one per segment, *distinct*; no label) and "
            "*contextual features* (a one-hot segment code appended to every token). The standing "
            "assumption of the G-claims: gates read only these structural channels of the current "
            "token, never $x_i$ or $y_i$; the weights are then fixed numbers, and the WPGD risk applies. "
            "Gates that read $x_i,y_i$ make the weights data-dependent, as the abstract allows; that "
            "class is outside the WPGD risk formulas and is probed only empirically (G6, full profile).",
            "**Reachable weights.** A product of gates in $[0,1]$ is nonnegative and can only grow "
            "toward the query. With distinct delimiters (or shared delimiters together with contextual "
            "features) the weights scalar gates reach, in the closure (gates exactly 0 or 1 are limits "
            "of saturated sigmoids), are $\\omega=Eu$ with $u$ in the monotone cone "
            "$M=\\{0\\le u_1\\le\\dots\\le u_K\\}$, or its negative (the sign is carried by $P$): the "
            "union $M\\cup(-M)$, which is not convex. $L^*_{GLA}$ is the profile risk minimised over it, "
            "$L_{LA}=L(\\mathbf 1)$ that of linear attention, and $L^*_{vec}$ that of key-wise gating (G1-G4).",
        ),
    ),
    Section(
        "Depth and trained models",
        (
            "$\\mathcal L^*_L$ is the infimum of the risk over $L$-layer "
            "residual constructions, i.e. $L$-step causal WPGD with free $P_\\ell$ and gate-reachable "
            "weights (G5). A trained model is a GLA fitted by Adam on sampled prompts; its effective "
            "weights and preconditioner are read from its gates and projections and compared with the "
            "predicted optimum of its architecture (G6). Both are the project's own questions: the "
            "abstract says that a multilayer GLA can implement WPGD (C3), not how the risk changes "
            "with depth, and it says nothing about training.",
        ),
    ),
)


# ------------------------------------------------------------------------------ symbols

SYMBOLS: tuple[Symbol, ...] = (
    # sizes and indices
    Symbol("n", "n", "number of in-context examples; the query is token $n+1$", "n"),
    Symbol("d", "d", "feature dimension, $x_i\\in\\mathbb R^d$", "d"),
    Symbol(
        "N",
        "N",
        "number of prompts in a batch (arrays are batch-first); in G3, $N$ also names the "
        "cone of nonnegative weights nondecreasing token by token",
        "N",
    ),
    Symbol(
        "T",
        "T",
        "number of tokens of a prompt ($n+1$, plus delimiters); as a superscript in SymPy output, "
        "the transpose ($P^T=P^\\top$)",
        "T",
    ),
    Symbol("K", "K", "number of tasks (segments) of a K-task prompt", "K"),
    Symbol("m_k", "m_k", "length of segment $k$ ($m$ the vector of lengths), $n=\\sum_km_k$", "m"),
    Symbol(
        "L",
        "L",
        "number of layers of a stack, and the risk $L(P,\\omega)$ (the argument tells which)",
        "L",
    ),
    Symbol(
        "i, j, k, l",
        "i, j, k, l",
        "indices of examples/tokens ($i,j\\le n+1$), of segments ($k,l\\le K$) "
        "or of eigenvalues ($\\lambda_k$); $k(i)$ is the segment of example $i$",
        "",
    ),
    Symbol(
        "r, s, t (as indices)",
        "r, s, t",
        "token positions in the GLA state formula "
        "$S_t=\\sum_{s\\le t}(\\prod_{r=s+1}^{t}G_r)\\odot v_sk_s^\\top$ (elsewhere $r$, $s$, $t$ "
        "have the meanings below)",
        "",
    ),
    Symbol("ℓ", "\\ell", "layer index, $\\ell=0,\\dots,L-1$", ""),
    # prompts and the layer
    Symbol(
        "x_i, x",
        "x_i, x",
        "features of example $i$ and of the query, in $\\mathbb R^d$; in SymPy output $x_{i,a}$ is "
        "coordinate $a$ of $x_i$ and $x_{q,a}$ that of the query",
        "X, x",
    ),
    Symbol(
        "y_i, y",
        "y_i, y",
        "labels of example $i$ and of the query; $y$ also the vector $(y_i)_{i\\le n}$",
        "y, y_query",
    ),
    Symbol("X", "X", "the $n\\times d$ matrix with rows $x_i^\\top$", "X"),
    Symbol(
        "z_i, Z",
        "z_i, Z",
        "tokens $z_i=[x_i;y_i]$, $z_{n+1}=[x;0]$; $Z$ all tokens of a prompt; "
        "$z^{(\\ell)}_i$, $Z_\\ell$ after $\\ell$ residual layers",
        "Z",
    ),
    Symbol(
        "q_t, k_t, v_t",
        "q_t, k_t, v_t",
        "query, key and value of token $t$: $W_qz_t$, $W_kz_t$, $W_vz_t$",
        "q, k, v",
    ),
    Symbol("W_q, W_k, W_v", "W_q, W_k, W_v", "the projections of a GLA layer", "W_q, W_k, W_v"),
    Symbol(
        "S_t",
        "S_t",
        "GLA state after token $t$, $S_0=0$, shape $D_v\\times D_k$; in L5, $S_3$ is "
        "the spectral sum $\\sum_k\\lambda_k^3/(b\\lambda_k+c)^2$ instead",
        "S",
    ),
    Symbol("o_t", "o_t", "output of token $t$, $o_t=S_tq_t$", "o"),
    Symbol("G_t", "G_t", "gate matrix of token $t$, entries in $[0,1]$", ""),
    Symbol(
        "g_t",
        "g_t",
        "scalar gate of token $t$, $G_t=g_t\\mathbf 1\\mathbf 1^\\top$; $g^{(\\ell)}_t$ in "
        "layer $\\ell$; in G3 the common gate of the examples",
        "log_g",
    ),
    Symbol(
        "γ_t",
        "\\gamma_t",
        "key-wise (vector) gate of token $t$, $G_t=\\mathbf 1\\gamma_t^\\top$",
        "log_g",
    ),
    Symbol(
        "c_t",
        "c_t",
        "cumulative log-gate $c_t=\\sum_{r\\le t}\\log g_r$ (not the scalar $c$ below)",
        "c",
    ),
    Symbol("δ", "\\delta", "gate of a delimiter token (G3)", ""),
    Symbol(
        "D_k, D_v",
        "D_k, D_v",
        "key and value widths of a layer; the claims use $D_k=d$ or $D_k=2d$",
        "Dk",
    ),
    Symbol("e_{d+1}", "e_{d+1}", "the unit vector of the label coordinate", ""),
    Symbol("GLA_ℓ", "\\mathrm{GLA}_\\ell", "layer $\\ell$ of a residual stack", ""),
    Symbol("𝟏", "\\mathbf 1", "the all-ones vector", ""),
    Symbol(
        "I, I_d",
        "I, I_d, \\mathbb I",
        "the identity matrix (of size $d$; $\\mathbb I$ in SymPy output)",
        "",
    ),
    Symbol("ℝ", "\\mathbb R", "the real numbers", ""),
    # WPGD
    Symbol(
        "P",
        "P",
        "preconditioner of WPGD, $d\\times d$; $P^*$ optimal, $P^*(\\omega)$ optimal for "
        "fixed weights",
        "P",
    ),
    Symbol(
        "P_q, P_k",
        "P_q, P_k",
        "the feature blocks of $W_q$, $W_k$ in the construction; $P=P_q^\\top P_k$",
        "P_q, P_k",
    ),
    Symbol(
        "p_q, p_k",
        "p_q, p_k, p^q, p^k",
        "entries of $P_q$, $P_k$ in the SymPy derivations ($p^q_{ab}$, $p^k_{ab}$; for $d=1$ the "
        "numbers $p_q$, $p_k$)",
        "",
    ),
    Symbol("P_ℓ", "P_\\ell", "preconditioner of layer $\\ell$ of a stack", ""),
    Symbol(
        "ω",
        "\\omega",
        "WPGD weights $\\omega\\in\\mathbb R^n$, one per example; $\\omega^*$ optimal; "
        "$\\omega^{(\\ell)}_{ij}$ the weight of token $j$ in the update of token $i$ in layer $\\ell$",
        "omega",
    ),
    Symbol(
        "Ω",
        "\\Omega",
        "feature-wise weights $\\Omega\\in\\mathbb R^{n\\times d}$, row $\\Omega_i$",
        "Omega",
    ),
    Symbol("ŷ", "\\hat y", "the prediction for the query", "yhat"),
    Symbol(
        "w^{(i)}_ℓ",
        "w^{(i)}_\\ell",
        "iterate of token $i$ after $\\ell$ causal WPGD steps, $w^{(i)}_0=0$; "
        "in G2, $w_k$ are the block weights of a norm instead",
        "",
    ),
    Symbol(
        "y^{(ℓ)}_i", "y^{(\\ell)}_i", "label slot of token $i$ after $\\ell$ residual layers", ""
    ),
    # data model
    Symbol("Σ", "\\Sigma", "feature covariance, $\\Sigma\\succ0$", "Sigma"),
    Symbol(
        "λ_k",
        "\\lambda_k",
        "eigenvalues of $\\Sigma$; $\\lambda_{\\min}$, $\\lambda_{\\max}$ the extremes",
        "lam",
    ),
    Symbol(
        "β_i, β",
        "\\beta_i, \\beta",
        "task vectors of example $i$ and of the query; $\\beta^{(k)}$ the task of segment $k$",
        "",
    ),
    Symbol(
        "R",
        "R",
        "task correlation, $E[\\beta_i\\beta_j^\\top]=R_{ij}I_d$, $(n+1)\\times(n+1)$, "
        "$R\\succeq0$",
        "R",
    ),
    Symbol("ξ_i, ξ", "\\xi_i, \\xi", "label noise, $\\mathcal N(0,\\sigma^2)$", ""),
    Symbol("σ", "\\sigma", "noise standard deviation, $\\sigma\\ge0$", "sigma"),
    Symbol("𝒩", "\\mathcal N", "the normal distribution", ""),
    Symbol(
        "E, 𝔼",
        "E, \\mathbb E",
        "expectation; in the G-claims $E$ is also the segment-membership matrix ($n\\times K$, "
        "$\\omega=Eu$)",
        "",
    ),
    Symbol("r", "r", "query relevance $r=(R_{i,n+1})_{i\\le n}$", "r"),
    Symbol("A", "A", "$A=R_{[n],[n]}+\\mathrm{diag}(R_{ii})$, $n\\times n$", "A"),
    Symbol(
        "B", "B", "$B=\\mathrm{diag}(R_{ii}\\,\\mathrm{tr}\\,\\Sigma+\\sigma^2)$, $n\\times n$", "B"
    ),
    Symbol(
        "a, b, c",
        "a, b, c",
        "$a=r^\\top\\omega$, $b=\\omega^\\top A\\omega$, $c=\\omega^\\top B\\omega$; "
        "in G3, (a)-(d) also label the four prompt layouts",
        "a, b, c",
    ),
    Symbol(
        "L(P, ω)",
        "L(P,\\omega)",
        "risk of WPGD, $E(y-\\hat y)^2$; $L(\\omega)=\\min_PL(P,\\omega)$ the "
        "profile risk; $L_0$ its value at $\\omega=0$ ($\\sigma^2+R_{n+1,n+1}\\mathrm{tr}\\,\\Sigma$)",
        "",
    ),
    Symbol(
        "s", "s", "a non-zero scale, $(P,\\omega)\\to(P/s,s\\omega)$; also a sign $s=\\pm1$", ""
    ),
    Symbol("t", "t", "parameter of the curve $\\omega(t)\\propto(A+tB)^{-1}r$", "t"),
    Symbol(
        "φ",
        "\\varphi",
        "$\\varphi=\\sum_k\\lambda_k^2/(b\\lambda_k+c)^2\\big/\\sum_k\\lambda_k^3/(b\\lambda_k+c)^2$, "
        "a weighted mean of the $1/\\lambda_k$",
        "phi",
    ),
    Symbol(
        "F", "F", "$F(b,c)=\\sum_k\\lambda_k^2/(b\\lambda_k+c)$; the profile risk is $L_0-a^2F$", ""
    ),
    Symbol("J(t)", "J(t)", "the one-dimensional reduction $a^2F$ along the curve", ""),
    Symbol(
        "κ",
        "\\kappa",
        "$\\kappa=(b+\\varphi c)/a$ in the gradient "
        "$\\nabla_\\omega L=2a^2S_3[(A+\\varphi B)\\omega-\\kappa r]$ of the profile risk",
        "",
    ),
    Symbol("D_i", "D_i", "$\\mathrm{diag}(\\Omega_i)$ (L1f)", ""),
    Symbol(
        "M_r, H",
        "M_r, H",
        "$M_r=\\sum_ir_iD_i$ and "
        "$H=\\sum_{i,j}A_{ij}D_i\\Sigma^2D_j+\\sum_iB_{ii}D_i\\Sigma D_i$ in the feature-wise risk (L1f)",
        "",
    ),
    # K-task prompts and GLA landscape
    Symbol("Γ", "\\Gamma", "task correlation between segments, $K\\times K$", "Gamma"),
    Symbol("ρ_k", "\\rho_k", "correlation of segment $k$'s task with the query's task", "rho"),
    Symbol("E (matrix)", "E", "segment-membership matrix, $n\\times K$: $\\omega=Eu$", ""),
    Symbol(
        "u, U",
        "u, U",
        "block weights, $u\\in\\mathbb R^K$; $U$ their feature-wise version (G4)",
        "u",
    ),
    Symbol(
        "M",
        "M",
        "the monotone cone $\\{0\\le u_1\\le\\dots\\le u_K\\}$; in L5, $M=A+tB$ instead",
        "",
    ),
    Symbol(
        "Π_M",
        "\\Pi_M",
        "projection onto $M$ in the weighted norm (clipped weighted isotonic regression)",
        "",
    ),
    Symbol(
        "α_k",
        "\\alpha_k",
        "$\\rho_k/(m_k+1+d+\\sigma^2)$, the optimal block weights for independent tasks "
        "and $\\Sigma=I$",
        "",
    ),
    Symbol(
        "v",
        "v",
        "second block-weight vector in $u-v$, $v\\in M$ (G4); elsewhere a value vector",
        "",
    ),
    Symbol(
        "L*_WPGD, L*_GLA, L_LA, L*_vec",
        "L^*_{WPGD}, L^*_{GLA}, L_{LA}, L^*_{vec}",
        "optimal risk of WPGD, of scalar-gated GLA (weights in $M\\cup(-M)$), of linear attention "
        "($\\omega=\\mathbf 1$), of key-wise gating",
        "",
    ),
    Symbol(
        "𝓛*_L", "\\mathcal L^*_L", "optimal risk of $L$-layer residual GLA constructions (G5)", ""
    ),
    Symbol(
        "∂ŷ/∂x",
        "\\partial\\hat y/\\partial x",
        "the gradient of the prediction in the query (G6)",
        "",
    ),
)


def symbol(code_or_symbol: str) -> Symbol:
    """The row whose ``code`` name or ``symbol`` is ``code_or_symbol``."""
    for s in SYMBOLS:
        if code_or_symbol in (s.symbol, *[c.strip() for c in s.code.split(",") if c.strip()]):
            return s
    raise KeyError(f"symbol: no row for {code_or_symbol!r}")


# ------------------------------------------------------------------ symbol coverage

#: Words that are labels or operator names inside math, not symbols.
_LABELS = frozenset(
    {
        "GLA",
        "LA",
        "WPGD",
        "vec",
        "after",
        "delim",
        "ex",
        "diag",
        "tr",
        "bmatrix",
        "max",
        "min",
        "inf",
        "sup",
        "log",
        "exp",
        "fw",
    }
)
#: Greek letters (and \ell) count as symbols; every other control word is an operator.
_GREEK = frozenset(
    """alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa
lambda mu nu xi pi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi
Sigma Upsilon Phi Psi Omega ell""".split()
)


def math_tokens(text: str) -> set[str]:
    """The symbols used in the inline math (``$...$``) of ``text``.

    Returns Greek control words (``\\omega``), styled letters (``\\mathcal L``, ``\\mathbf 1``)
    and single Latin letters; operator names, ``\\mathrm{...}`` words and the labels in
    :data:`_LABELS` (``GLA``, ``tr``, ...) are dropped.
    """
    toks: set[str] = set()
    for m in re.findall(r"\$(.+?)\$", text, flags=re.S):
        s = re.sub(r"\\(mathrm|text|operatorname|begin|end)\s*\{[^}]*\}", " ", m)
        s = re.sub(
            r"\\(mathcal|mathbb|mathbf)\s*\{?\s*([A-Za-z0-9])\}?",
            lambda g: f" \\{g.group(1)} {g.group(2)}@ ",
            s,
        )
        for t in re.findall(r"\\(?:mathcal|mathbb|mathbf) [A-Za-z0-9]@|\\[A-Za-z]+|[A-Za-z]+", s):
            if t.endswith("@"):
                toks.add(t[:-1])
            elif t.startswith("\\"):
                if t[1:] in _GREEK:
                    toks.add(t)
            elif t not in _LABELS:
                toks.update(t)
    return toks


def covered_tokens() -> set[str]:
    """The symbols :data:`SYMBOLS` defines (as :func:`math_tokens` would report them)."""
    out: set[str] = set()
    for s in SYMBOLS:
        out |= math_tokens(f"${s.latex}$")
    return out


# ---------------------------------------------------------------------------- rendering


def _claim_field(claim: Any, name: str, default: Any = "") -> Any:
    value = getattr(claim, name, default)
    return default if value is None else value


def _conditions(claim: Any) -> list[str]:
    cond = _claim_field(claim, "conditions", None)
    if not cond:
        return []
    if isinstance(cond, str):
        return [cond]
    return [str(c) for c in cond]


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def _md_cell(s: str) -> str:
    return _one_line(s).replace("|", "\\|")


#: Claim areas, in the order of the page: ``area -> (title, topic pages)``. Claims without an
#: ``area`` attribute are placed by the first letter of their id (``_AREA_OF_PREFIX``).
_AREAS = {
    "construction": ("GLA implements WPGD", ("docs/construction.md",)),
    "landscape": ("The WPGD landscape", ("docs/landscape.md",)),
    "gla-landscape": ("The GLA landscape", ("docs/gla_landscape.md",)),
    "depth": ("Depth", ("docs/depth.md",)),
    "training": ("Trained models", ("docs/trained.md", "docs/training.md")),
}
_AREA_OF_PREFIX = {"C": "construction", "L": "landscape", "G": "gla-landscape"}


def _area(claim: Any) -> str:
    area = str(_claim_field(claim, "area", "") or "")
    return area or _AREA_OF_PREFIX.get(str(_claim_field(claim, "id"))[:1], "other")


def _cited_by(claims: list, text: str) -> list[str]:
    return [
        str(_claim_field(c, "id")) for c in claims if text in str(_claim_field(c, "source", ""))
    ]


def render_notation_md(heading: str = "##") -> str:
    """The symbol table as Markdown (used by ``docs/theory.md`` and ``appendix.md``)."""
    L = [f"{heading} Symbols", "", "| symbol | LaTeX | meaning | in code |", "|---|---|---|---|"]
    for s in SYMBOLS:
        L.append(
            f"| {_md_cell(s.symbol)} | ${s.latex}$ | {_md_cell(s.meaning)} | "
            + (", ".join(f"`{c.strip()}`" for c in s.code.split(",")) if s.code else "")
            + " |"
        )
    return "\n".join(L) + "\n"


def md_to_tex(text: str) -> str:
    """Markdown-with-math to LaTeX: ``$...$`` kept, ``**bold**``, ``*emph*`` and ```code```
    converted, straight double quotes paired into LaTeX quotes, everything else escaped for
    text mode (non-ASCII via ``tex_unicode``).

    >>> print(md_to_tex('"no gain when $x>0$" holds, 50%'))
    ``no gain when $x>0$'' holds, 50\\%
    """

    # straight quotes outside math, paired in order: open, close, open, ... (placeholders that
    # survive escaping, replaced at the end)
    parts = re.split(r"(\$[^$]+\$)", text)
    n = 0
    for i in range(0, len(parts), 2):
        chars = list(parts[i])
        for k, ch in enumerate(chars):
            if ch == '"':
                chars[k] = "\x01" if n % 2 == 0 else "\x02"
                n += 1
        parts[i] = "".join(chars)
    return _md_to_tex("".join(parts)).replace("\x01", "``").replace("\x02", "''")


def _md_to_tex(text: str) -> str:
    from .appendix_text import tex_escape, tex_unicode

    out = []
    for i, part in enumerate(re.split(r"(\$[^$]+\$)", text)):
        if i % 2:
            out.append(tex_unicode(part))
            continue
        pieces = re.split(r"(\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`)", part)
        for j, p in enumerate(pieces):
            if j % 2 == 0:
                out.append(tex_escape(p))
            elif p.startswith("**"):
                out.append(r"\textbf{" + tex_escape(p[2:-2]) + "}")
            elif p.startswith("*"):
                out.append(r"\emph{" + tex_escape(p[1:-1]) + "}")
            else:
                out.append(r"\texttt{" + tex_escape(p[1:-1]) + "}")
    return "".join(out)


_PLAIN = {
    r"\top": "ᵀ",
    r"\le": "≤",
    r"\ge": "≥",
    r"\ne": "≠",
    r"\in": "∈",
    r"\infty": "∞",
    r"\odot": "⊙",
    r"\propto": "∝",
    r"\mapsto": "↦",
    r"\to": "→",
    r"\succeq": "⪰",
    r"\succ": "≻",
    r"\sim": "~",
    r"\cup": "∪",
    r"\sum": "Σ",
    r"\prod": "∏",
    r"\cdot": "·",
    r"\times": "×",
    r"\pm": "±",
}


def plain_text(md: str) -> str:
    """Markdown with inline math as plain Unicode text for terminals: ``$...$`` unwrapped,
    Greek letters and common operators as Unicode, ``\\mathrm{x}`` as ``x``, matrices as
    ``[[a,b],[c,d]]``, braces dropped.

    >>> plain_text(r"the curve $(A+tB)^{-1}r$, $t\\in[1/\\lambda_{\\max},1/\\lambda_{\\min}]$")
    'the curve (A+tB)^-1 r, t∈[1/λ_max,1/λ_min]'
    """
    from .appendix_text import _UNICODE_MATH

    greek = {v: k for k, v in _UNICODE_MATH.items() if v[1:].isalpha() and len(k) == 1}

    def conv(m: re.Match) -> str:
        t = m.group(1)
        t = re.sub(
            r"(?:\\bigl\()?\\begin\{(?:b|small)matrix\}(.*?)\\end\{(?:b|small)matrix\}(?:\\bigr\))?",
            lambda g: (
                "[[" + "],[".join(r.replace("&", ",") for r in g.group(1).split(r"\\")) + "]]"
            ),
            t,
        )
        t = re.sub(r"\\(?:mathrm|text|operatorname|mathbf|mathcal|mathbb)\{([^}]*)\}", r"\1", t)
        t = re.sub(r"\\(?:mathbf|mathcal|mathbb) ?([A-Za-z0-9])", r"\1", t)
        t = re.sub(r"\^\{-1\}", "^-1 ", t)
        t = re.sub(r"\\(max|min|log|exp|tr|diag)\b", r"\1", t)
        for k in sorted(_PLAIN, key=len, reverse=True):
            t = re.sub(re.escape(k) + r"(?![A-Za-z])", _PLAIN[k], t)
        t = re.sub(r"\\([A-Za-z]+)", lambda g: greek.get("\\" + g.group(1), g.group(1)), t)
        t = t.replace("\\,", " ").replace("\\ ", " ").replace("\\%", "%")
        return t.replace("{", "").replace("}", "").replace("^ᵀ", "ᵀ").replace(" ^-1", "^-1").strip()

    return re.sub(r"\$([^$]+)\$", conv, md).replace(" )", ")")


def render_notation_tex() -> str:
    """The symbol table as LaTeX (a ``longtable``), for the appendix."""
    L = [
        r"\subsection*{Notation}",
        md_to_tex(
            "The setting and every claim are stated in words in `docs/theory.md`; the symbols:"
        ),
        "",
        r"\begin{longtable}{@{}l>{\raggedright\arraybackslash}p{0.72\linewidth}@{}}",
        r"\toprule",
        r"symbol & meaning \\ \midrule",
        r"\endhead",
    ]
    for s in SYMBOLS:
        L.append(f"${s.latex}$ & {md_to_tex(_one_line(s.meaning))} \\\\")
    L += [r"\bottomrule", r"\end{longtable}", ""]
    return "\n".join(L) + "\n"


def render_theory_md(claims: dict | None = None) -> str:
    """``docs/theory.md``: the setting, the symbols, the sources and every registered claim.

    ``claims`` maps ids to claim objects with attributes ``id``, ``title``, ``statement``
    (LaTeX), ``source``, ``status_note`` and optionally ``conditions`` (a string or a list)
    and ``checks`` (objects with ``name`` and ``leg``); by default
    :func:`proofs_check.registry.all_claims`.

    >>> from types import SimpleNamespace as C
    >>> page = render_theory_md({"X1": C(id="X1", title="t", statement="$a=a$",
    ...                                  source="derived here", status_note="")})
    >>> "#### X1: t" in page and "* **derived here** (cited by X1)" in page
    True
    """
    if claims is None:
        from .registry import all_claims

        claims = all_claims()
    cl = list(claims.values())
    L = _render_head() + _render_setting() + _render_sources(cl) + _render_claims(cl)
    return "\n".join(L).rstrip() + "\n"


def _render_head() -> list[str]:
    return [
        "# The theory gla-verify checks",
        "",
        "<!-- Generated by `gla-verify theory --out docs/theory.md` from "
        "proofs_check/notation.py and the registered claims; do not edit by hand. -->",
        "",
        "This page is the project's own statement of its setting and of every claim, in the form "
        "`gla-verify` checks it. Run `gla-verify list` for the registered claims and "
        "`gla-verify run` to check them.",
        "",
        "## Contents",
        "",
        *[f"* [{sec.title}](#{_anchor(sec.title)})" for sec in SETTING],
        "* [Symbols](#symbols)",
        "* [Sources](#sources)",
        "* [Claims](#claims)",
        "",
    ]


def _render_setting() -> list[str]:
    """The sections of :data:`SETTING`, then the symbol table."""
    L = []
    for sec in SETTING:
        L += [f"## {sec.title}", ""]
        for p in sec.paragraphs:
            L += [p, ""]
    return L + [render_notation_md("##"), ""]


def _render_sources(cl: list) -> list[str]:
    """The sources, each with the claims citing it, and the abstract sentences with the claims
    quoting them (both read from the claims' ``source`` fields)."""
    L = [
        "## Sources",
        "",
        "Each claim's *source* says what it rests on: a sentence of the paper's abstract, a named "
        "prior result, or a derivation here. No section, equation or theorem number of any text is "
        "cited, because the full text of the paper has not been consulted.",
        "",
    ]
    for name, text in SOURCES:
        ids = _cited_by(cl, name)
        L.append(
            f"* **{name}** ({'cited by ' + ', '.join(ids) if ids else 'cited in the setting'}): {text}"
        )
    L += [
        "",
        "The sentences of the abstract the claims make precise, and the claims that quote them:",
        "",
    ]
    for sentence, topic in ABSTRACT_SENTENCES:
        ids = _cited_by(cl, sentence)
        L += [
            f"> {sentence}",
            "",
            f"{topic[:1].upper() + topic[1:]}: {', '.join(ids) if ids else 'no claim'}.",
            "",
        ]
    return L


def _render_claims(cl: list) -> list[str]:
    """Every claim, grouped by area in the order of :data:`_AREAS` (unknown areas last)."""
    L = [
        "## Claims",
        "",
        "Each claim below is the statement `gla-verify` checks, with its conditions as the suite "
        "found them. *Note* records what the checks found beyond the statement, and where the "
        "claim differs from the way it was first posed (collected in `docs/findings.md`).",
        "",
    ]
    by_area: dict[str, list] = {}
    for c in cl:
        by_area.setdefault(_area(c), []).append(c)
    order = [a for a in _AREAS if a in by_area] + [a for a in by_area if a not in _AREAS]
    for area in order:
        title, pages = _AREAS.get(
            area, ("Other claims" if area == "other" else f"Area {area!r}", ())
        )
        area_ids = ", ".join(str(_claim_field(c, "id")) for c in by_area[area])
        L += [f"### {title} ({area_ids})", ""]
        if pages:
            L += [f"Derivations and figures: {', '.join(f'`{p}`' for p in pages)}.", ""]
        for c in by_area[area]:
            L += _render_claim(c)
    return L


def _render_claim(c: Any) -> list[str]:
    cid, title = _claim_field(c, "id"), _one_line(_claim_field(c, "title"))
    L = [
        f"#### {cid}: {title}",
        "",
        f"> **Claim {cid}.** {_one_line(_claim_field(c, 'statement'))}",
        "",
    ]
    conds = _conditions(c)
    if conds:
        L += ["*Conditions:*", ""] + [f"* {_one_line(x)}" for x in conds] + [""]
    L += [f"*Source:* {_one_line(_claim_field(c, 'source'))}.", ""]
    note = _one_line(_claim_field(c, "status_note"))
    if note:
        L += [f"*Note:* {note}", ""]
    checks = _claim_field(c, "checks", []) or []
    if checks:
        L += ["*Checked by:*", ""]
        L += [f"* {getattr(k, 'leg', '?')}: {_one_line(getattr(k, 'name', k))}" for k in checks]
        L += [""]
    return L


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


# ---------------------------------------------------------------------------------- CLI


def theory_page(out: str | None = None, check: str | None = None) -> int:
    """Print ``docs/theory.md`` (default), write it atomically to ``out``, or ``check`` that
    the file at that path equals the generated text.

    Returns the exit status: 0 written or up to date; 2 the ``check`` file is out of date or
    unreadable. A stale page is an *input* error (the file handed to ``--check`` is not what
    it must be), so it shares status 2 with the other input errors; status 1 is kept for its
    one meaning, "some claim is false", which a documentation check never decides.
    """
    text = render_theory_md()
    if check:
        try:
            current = Path(check).read_text(encoding="utf-8")
        except OSError as exc:
            print(f"error: --check: {exc}", file=sys.stderr)
            return 2
        if current != text:
            print(
                f"error: --check: {check} is out of date; regenerate it with "
                f"`gla-verify theory --out {check}`",
                file=sys.stderr,
            )
            return 2
        print(f"{check} is up to date")
        return 0
    if out:
        from .report import atomic_write_text

        atomic_write_text(out, text)
        print(f"written to {out}")
        return 0
    sys.stdout.write(text)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``gla-verify theory`` / ``python -m proofs_check.notation``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--out", metavar="PATH", help="write the page here, atomically (default: standard output)"
    )
    g.add_argument(
        "--check",
        metavar="PATH",
        help="compare PATH with the generated page: exit 0 if equal, 2 if it differs or cannot be "
        "read (an input error; 1 is reserved for a false claim)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m proofs_check.notation [--out PATH | --check PATH]`` (same as ``gla-verify theory``).

    Exit status: 0 written / up to date, 2 usage, or the ``--check`` file out of date or
    unreadable (see :func:`theory_page`).
    """
    p = argparse.ArgumentParser(
        prog="python -m proofs_check.notation",
        description="Generate docs/theory.md from the notation and the registered claims.",
    )
    add_arguments(p)
    args = p.parse_args(argv)
    return theory_page(args.out, args.check)


if __name__ == "__main__":
    sys.exit(main())
