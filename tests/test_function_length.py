"""Functions short enough to read at once: none of more than :data:`LIMIT` lines (``def`` to
last line, docstring and decorators' arguments included, as formatted) unless a comment says
why its length is honest (``# why long: ...``: a linear derivation, a parser table, a
docstring that is the contract). Long functions otherwise get split into named steps.

The rule holds for the whole of ``theory/``, ``numerics/`` and ``proofs_check/``, figure
functions (``@CLAIM.figure``) included.

Run as a script for the current list: ``python tests/test_function_length.py``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("theory", "numerics", "proofs_check")
LIMIT = 80
#: A comment that says why a function is long, inside it or on the lines just above it.
WHY = re.compile(r"#\s*why\b", re.IGNORECASE)


def long_functions(path: Path, root: Path = ROOT) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, length)`` of each function in ``path`` longer than
    :data:`LIMIT` lines without a why-comment (nested functions and methods included); the
    name of a function decorated with ``@<something>.figure(...)`` ends in ``[figure]``."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                length = child.end_lineno - child.lineno + 1
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                # the comment may sit in the function or on the (up to 3) lines above it
                span = lines[max(0, first - 4) : child.end_lineno]
                if length > LIMIT and not any(WHY.search(s) for s in span):
                    out.append((name + _figure_tag(child), child.lineno, length))
            visit(child, name + "." if name != prefix else prefix)

    visit(ast.parse(text), "")
    return out


def _figure_tag(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if isinstance(target, ast.Attribute) and target.attr == "figure":
            return " [figure]"
    return ""


def scan(root: Path = ROOT) -> list[str]:
    """``path:line name (N lines)`` of every long function without a why-comment."""
    bad = []
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            rel = f.relative_to(root).as_posix()
            for name, line, n in long_functions(f, root):
                bad.append(f"{rel}:{line} {name} ({n} lines)")
    return bad


def test_no_long_function_without_a_reason():
    bad = scan()
    assert not bad, (
        f"functions over {LIMIT} lines without a '# why long:' comment (split them into named "
        "steps, or say why the length is honest):\n" + "\n".join(bad)
    )


def test_the_scan_sees_a_long_function(tmp_path):
    # planted: a long function is reported, the same with a why-comment is not, nor a short one
    body = "".join(f"    x{k} = {k}\n" for k in range(LIMIT))
    (tmp_path / "m.py").write_text(
        "def long():\n" + body + "\n"
        "# why long: a table\n"
        "def table():\n" + body + "\n"
        "class C:\n"
        "    def method(self):\n" + body.replace("    ", "        ") + "\n"
        "def short():\n    return 1\n"
        "@CLAIM.figure('f', 'a figure')\n"
        "def fig(claim, out, data_dir):\n" + body
    )
    found = long_functions(tmp_path / "m.py", tmp_path)
    assert [(name, n) for name, _, n in found] == [
        ("long", LIMIT + 1),
        ("C.method", LIMIT + 1),
        ("fig [figure]", LIMIT + 1),
    ]


if __name__ == "__main__":
    violations = scan()
    print("\n".join(violations) or "no long function without a reason")
    sys.exit(1 if violations else 0)
