"""Text shared by the G-claims (the gating assumption every one of them makes)."""

__all__ = ["GATE_NOTE", "GATE_CONDITION"]

# Markdown with inline LaTeX math, like every claim text.
GATE_CONDITION = r"gates read only the structural channels (delimiter flags, contextual features), never $x_i,y_i$"
GATE_NOTE = (
    "Gates read only the structural channels (delimiter flags, contextual features) of the current "
    r"token, never $x_i,y_i$ (that would make $\omega$ data-dependent, outside fixed-weight WPGD)."
)
