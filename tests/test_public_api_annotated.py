"""The public API is fully annotated: every parameter and every return type of each public
function and method (listed in ``__all__``, or not starting with ``_`` when a module has no
``__all__``) of a public module. mypy checks the annotations; this test checks they exist."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Packages and modules whose public API must be fully annotated (numerics/gla and
#: numerics/train.py are being annotated by their owners).
PACKAGES = (
    "theory",
    "numerics/__init__.py",
    "numerics/baselines.py",
    "numerics/closed_forms.py",
    "numerics/data.py",
    "numerics/depth.py",
    "numerics/gla",
    "numerics/gla_landscape.py",
    "numerics/landscape.py",
    "numerics/landscape_search.py",
    "numerics/measures.py",
    "numerics/moments.py",
    "numerics/prompts.py",
    "numerics/risk.py",
    "numerics/stack.py",
    "numerics/train.py",
    "numerics/wpgd.py",
    "proofs_check/__init__.py",
    "proofs_check/api.py",
    "proofs_check/appendix.py",
    "proofs_check/appendix_evidence.py",
    "proofs_check/appendix_text.py",
    "proofs_check/checks.py",
    "proofs_check/claims",
    "proofs_check/cli.py",
    "proofs_check/experiments",
    "proofs_check/formulas.py",
    "proofs_check/general_proofs.py",
    "proofs_check/instances.py",
    "proofs_check/notation.py",
    "proofs_check/output.py",
    "proofs_check/plotting.py",
    "proofs_check/sources.py",
    "proofs_check/tolerances.py",
    "proofs_check/registry.py",
    "proofs_check/report.py",
    "proofs_check/schema.py",
    "proofs_check/stress",
    "proofs_check/sweep",
)


def _public_modules(pkg: str):
    path = ROOT / pkg
    for f in sorted(path.rglob("*.py") if path.is_dir() else [path]):
        rel = f.relative_to(ROOT)
        if not any(part.startswith("_") and part != "__init__.py" for part in rel.parts):
            yield rel


def _exported(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def _missing(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    a = fn.args
    params = a.posonlyargs + a.args + a.kwonlyargs
    if method and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    out = [p.arg for p in params if p.annotation is None]
    out += [f"*{v.arg}" for v in (a.vararg, a.kwarg) if v is not None and v.annotation is None]
    if fn.returns is None:
        out.append("return")
    return out


def unannotated(rel: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    names = _exported(tree)

    def public(name: str) -> bool:
        return name in names if names is not None else not name.startswith("_")

    bad = []
    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, funcs) and public(node.name):
            if m := _missing(node, method=False):
                bad.append(f"{rel}:{node.lineno} {node.name}: {', '.join(m)}")
        elif isinstance(node, ast.ClassDef) and public(node.name):
            for sub in node.body:
                if not isinstance(sub, funcs):
                    continue
                if sub.name.startswith("_") and sub.name != "__init__":
                    continue
                if m := _missing(sub, method=True):
                    bad.append(f"{rel}:{sub.lineno} {node.name}.{sub.name}: {', '.join(m)}")
    return bad


@pytest.mark.parametrize("pkg", PACKAGES)
def test_public_api_is_annotated(pkg):
    bad = [b for rel in _public_modules(pkg) for b in unannotated(rel)]
    assert not bad, "public functions without annotations:\n" + "\n".join(bad)


def test_the_check_sees_a_missing_annotation(tmp_path):
    # planted: one unannotated parameter and one missing return type are both reported
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "__all__ = ['f', 'C']\n"
        "def f(x: int, y): return x\n"
        "def _private(z): return z\n"
        "class C:\n"
        "    def m(self, a: int) -> int: return a\n"
        "    def n(self): return 1\n"
    )
    bad = unannotated(Path("pkg/mod.py"), root=tmp_path)
    assert bad == ["pkg/mod.py:2 f: y, return", "pkg/mod.py:6 C.n: return"]
