"""Helpers shared by several test modules (imported as ``shared``: pytest puts tests/ on sys.path)."""

from hypothesis import strategies as st

from proofs_check.tolerances import IDENTITY

__all__ = ["TOL", "gate_values"]

#: Float64 identities between implementations (proofs_check.tolerances.IDENTITY).
TOL = IDENTITY

#: Gates in [0, 1] with the edge cases that break naive implementations: exactly 0 and 1,
#: and values within 1e-12 of either end.
gate_values = st.one_of(
    st.just(0.0),
    st.just(1.0),
    st.floats(0.0, 1.0),
    st.floats(1.0 - 1e-9, 1.0),
    st.floats(0.0, 1e-12),
)
