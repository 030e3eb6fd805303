r"""The claims: one module per claim, discovered, plus claims registered by other packages.

**Built-in claims.** Every module in this package whose name does not start with ``_``
defines exactly one claim as the module attribute ``CLAIM`` (a
:class:`~proofs_check.registry.Claim`). Nothing lists them: adding a claim is adding a file
(see ``_template.py`` and docs/adding_a_claim.md).

**Claims of other packages.** An installed distribution registers claims under the
entry-point group :data:`ENTRY_POINT_GROUP` (``gla_verify.claims``); each entry point names a
module with a ``CLAIM`` attribute, or a ``Claim`` object itself::

    [gla_verify.claims]
    X1 = my_package.my_claim

**Order.** Claims are reported by area, in the order of :data:`AREAS`, then by id in natural
order (``L1 < L1f < L2 < L10``); areas not listed (e.g. those of other packages) come after,
alphabetically.

**Errors are not skipped.** A module that fails to import, lacks ``CLAIM``, or reuses an id
raises :class:`ClaimDiscoveryError` naming the module or entry point: a claim that silently
disappeared from a report would read as "not claimed" rather than "broken".

>>> claims = discover()
>>> list(claims)[:3], claims["C1"].origin
(['C1', 'C2', 'C3'], 'gla-verify: proofs_check.claims.c1')
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from importlib import metadata
from types import ModuleType

from ..registry import LEGS, Claim

__all__ = ["AREAS", "ENTRY_POINT_GROUP", "ClaimDiscoveryError", "discover", "builtin_modules"]

#: Report order of the built-in areas.
AREAS = ("construction", "landscape", "gla-landscape", "depth", "training")
ENTRY_POINT_GROUP = "gla_verify.claims"


class ClaimDiscoveryError(RuntimeError):
    """A claim module or entry point could not be turned into a claim."""


def builtin_modules() -> list[str]:
    """Names of the built-in claim modules (every non-underscore module of this package)."""
    return sorted(
        f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
    )


def _claim_of(obj: object, where: str) -> Claim:
    claim = getattr(obj, "CLAIM", None) if isinstance(obj, ModuleType) else obj
    if not isinstance(claim, Claim):
        raise ClaimDiscoveryError(
            f"{where}: expected a module with a CLAIM attribute or a Claim, "
            f"got {type(claim).__name__}"
        )
    missing = set(LEGS) - claim.legs()
    if missing:
        raise ClaimDiscoveryError(
            f"{where}: claim {claim.id} has no {' or '.join(sorted(missing))} check "
            "(every claim is checked by both legs)"
        )
    return claim


def _import(name: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # re-raised with the module named: which claim is broken matters
        raise ClaimDiscoveryError(f"{where}: import failed: {type(exc).__name__}: {exc}") from exc


def _entry_point_claims() -> list[tuple[Claim, str]]:
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        where = f"{dist}: {ep.value} (entry point {ep.name})"
        try:
            obj = ep.load()
        except Exception as exc:  # re-raised with the entry point named
            raise ClaimDiscoveryError(f"{where}: load failed: {type(exc).__name__}: {exc}") from exc
        out.append((_claim_of(obj, where), where))
    return out


def _sort_key(claim: Claim) -> tuple[int, str, list[int | str]]:
    area = AREAS.index(claim.area) if claim.area in AREAS else len(AREAS)
    natural = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", claim.id)]
    return area, claim.area, natural


def discover() -> dict[str, Claim]:
    """Every claim (built-in modules, then entry points), keyed by id, in report order."""
    found = [
        (_claim_of(_import(name, name), name), f"gla-verify: {name}") for name in builtin_modules()
    ]
    found += _entry_point_claims()
    claims: dict[str, Claim] = {}
    for claim, origin in found:
        if claim.id in claims:
            raise ClaimDiscoveryError(
                f"claim id {claim.id!r} defined twice: {claims[claim.id].origin} and {origin}"
            )
        claim.origin = origin
        claims[claim.id] = claim
    return {c.id: c for c in sorted(claims.values(), key=_sort_key)}
