"""One test per finding of issue 9 (its *Why* list), written only against interfaces that
already existed before the fix (``proofs_check.cli.main``, ``build_appendix``,
``report.atomic_write_text``, the numerics functions), so each one runs -- and failed --
on the code before the fix. docs/reliability.md records that check.

(The stress findings belong to the stress command's own tests; the GLA engine and
``train`` findings to the engines' tests.)
"""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from numerics.data import MultitaskModel
from numerics.landscape import solve_wpgd
from numerics.risk import profile_risk
from proofs_check import appendix as app
from proofs_check.cli import main
from proofs_check.registry import Claim, Context, Evidence, holds
from proofs_check.report import atomic_write_text, build_report

ROOT = Path(__file__).resolve().parents[1]
R3 = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])


def _report() -> dict:
    c = Claim("T1", "passes", r"1 = 1", "test")
    c.check("sym", leg="theory")(lambda ctx: Evidence("sym", "symbolic", [holds("verified", True)]))
    return build_report([c.run(Context())], {"seed": 0, "profile": "quick", "ids": ["T1"]})


def _appendix(out, capsys=None) -> int:
    rep = Path(out).parent / "in.json"
    rep.write_text(json.dumps(_report()))
    try:
        return main(["appendix", "--from", str(rep), "--no-figures", "-q", "--out", str(out)])
    except SystemExit as exc:
        return exc.code


# 1. appendix --out deletes files it did not write; --out onto a file or symlink replaces it
def test_why_1_appendix_keeps_foreign_files(tmp_path):
    paper = tmp_path / "paper"
    (paper / "sub").mkdir(parents=True)
    (paper / "thesis.tex").write_text("mine")
    (paper / "sub" / "data.csv").write_text("1,2")
    assert _appendix(paper) == 2
    assert (paper / "thesis.tex").read_text() == "mine" and (
        paper / "sub" / "data.csv"
    ).read_text() == "1,2"


def test_why_1_appendix_refuses_a_file_or_symlink_at_out(tmp_path):
    f = tmp_path / "notes.tex"
    f.write_text("mine")
    d = tmp_path / "d"
    d.mkdir()
    link = tmp_path / "link"
    link.symlink_to(d)
    assert _appendix(f) == 2 and f.read_text() == "mine"
    assert _appendix(link) == 2 and link.is_symlink() and not any(d.iterdir())


# 2. the swap: a crash between the renames, two writers, stale temporaries of killed runs
def test_why_2_crash_between_renames_leaves_a_complete_appendix(tmp_path, monkeypatch):
    out = tmp_path / "app"
    assert _appendix(out) == 0
    real = os.replace
    calls = []

    def crash_on_second(src, dst):
        if Path(dst) == out and not calls:  # the rename that installs the new directory, once
            calls.append(dst)
            raise OSError(5, "injected I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second)
    assert _appendix(out) == 3  # an environment failure, not a false claim
    monkeypatch.setattr(os, "replace", real)
    assert (out / "appendix.md").is_file() and (out / "results.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app", "in.json"]


_WRITER = textwrap.dedent("""
    import json, os, signal, sys, time
    sys.path.insert(0, {root!r})
    from proofs_check import appendix as app
    rep = json.load(open(sys.argv[2]))
    time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # start together
    real_replace = os.replace
    def slow_replace(src, dst):  # widen the window between check and rename, as a loaded disk does
        time.sleep(0.3)
        return real_replace(src, dst)
    os.replace = slow_replace
    if sys.argv[3] == "kill":
        real = app.render_tex
        def render(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        app.render_tex = render
    app.build_appendix(sys.argv[1], rep, progress=lambda m: None, figures=False)
""")


def _writers(tmp_path, out, modes):
    script = tmp_path / "w.py"
    script.write_text(_WRITER.format(root=str(ROOT)))
    rep = tmp_path / "in.json"
    rep.write_text(json.dumps(_report()))
    go = time.time() + 3.0  # after every interpreter has started
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), str(rep), m, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in modes
    ]
    return [(p.communicate(timeout=120), p.returncode) for p in procs]


def test_why_2_concurrent_writers_do_not_crash(tmp_path):
    out = tmp_path / "work" / "app"
    out.parent.mkdir()
    for _ in range(2):  # the first round creates the directory, the second replaces it
        res = _writers(tmp_path, out, ["ok"] * 6)
        assert [rc for _, rc in res] == [0] * 6, [e[-300:] for (_, e), rc in res if rc]
        assert (out / "appendix.md").is_file() and sorted(p.name for p in out.parent.iterdir()) == [
            "app"
        ]


def test_why_2_sigkill_leaves_no_temporary_after_the_next_run(tmp_path):
    out = tmp_path / "work" / "app"
    out.parent.mkdir()
    (res,) = _writers(tmp_path, out, ["kill"])
    assert res[1] == -signal.SIGKILL
    (res,) = _writers(tmp_path, out, ["ok"])
    assert res[1] == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["app"]


# 3. run C1 --seed -1 reported C1 as FAILED (exit 1)
def test_why_3_negative_seed_is_a_usage_error(capsys):
    try:
        code = main(["run", "C1", "--seed", "-1", "-q"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and "--seed" in capsys.readouterr().err


# 4. --json at a folder failed after all claims ran, with a traceback and exit 1; "" wrote nothing
@pytest.mark.parametrize("target", ["", "DIR"])
def test_why_4_unusable_json_target_refused_up_front(tmp_path, capsys, target, monkeypatch):
    ran = []
    monkeypatch.setattr(Claim, "run", lambda self, ctx: ran.append(self.id))
    code = main(["run", "C1", "-q", "--json", str(tmp_path) if target == "DIR" else ""])
    err = capsys.readouterr().err
    assert code == 2 and "--json" in err and "Traceback" not in err and ran == []


# 5. appendix --from null / missing key / wrong type: a raw TypeError/KeyError traceback
@pytest.mark.parametrize("doc", ["null", "missing", "wrong-type"])
def test_why_5_from_explains_the_first_problem(tmp_path, capsys, doc):
    rep = _report()
    if doc == "missing":
        del rep["summary"]
    elif doc == "wrong-type":
        rep["claims"][0]["evidence"] = 7
    p = tmp_path / "r.json"
    p.write_text("null" if doc == "null" else json.dumps(rep))
    code = main(
        ["appendix", "--from", str(p), "--no-figures", "-q", "--out", str(tmp_path / "app")]
    )
    err = capsys.readouterr().err
    want = {
        "null": "got null",
        "missing": "missing key 'summary'",
        "wrong-type": "claims[0].evidence: expected a list",
    }
    assert code == 2 and want[doc] in err and "Traceback" not in err


# 6. PSD/PD checks with an absolute tolerance
def test_why_6_checks_relative_to_scale():
    MultitaskModel(R3, np.diag([1.0, 1e-12]))
    MultitaskModel(R3, 1e-11 * np.eye(2))
    bad = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * 1e-11
    with pytest.raises(ValueError, match="^R"):
        MultitaskModel(bad, np.eye(2))


# 7. silent non-finite results
def test_why_7_no_silent_non_finite_results():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        big = solve_wpgd(MultitaskModel(R3, 1e200 * np.eye(2))).risk
        m = MultitaskModel(R3, np.eye(2), 0.1)
        tiny = profile_risk(m, 1e-160 * np.array([1.0, 2.0]))
    assert big == pytest.approx(1e200 * solve_wpgd(MultitaskModel(R3, np.eye(2))).risk, rel=1e-12)
    assert tiny == pytest.approx(profile_risk(m, np.array([1.0, 2.0])), rel=1e-13)


# 8. ZeroDivisionError / OverflowError escaped solve_wpgd
def test_why_8_no_raw_arithmetic_errors_from_solve_wpgd():
    tiny_r = np.array([[1.0, 1e-170], [1e-170, 1.0]])
    assert solve_wpgd(MultitaskModel(tiny_r, np.eye(2))).risk == pytest.approx(2.0)
    with pytest.raises(ValueError, match="^sigma"):
        solve_wpgd(MultitaskModel(R3, np.eye(2), 1e200))


# 9. reports 0600 and the appendix folder 0700 whatever the umask
def test_why_9_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "r.json", "{}")
        app.build_appendix(tmp_path / "app", _report(), progress=lambda m: None, figures=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "app").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "app" / "results.json").stat().st_mode) == 0o644


# 10. complex input silently truncated; Ctrl-C printed a traceback
def test_why_10_complex_input_is_a_type_error():
    with pytest.raises(TypeError):
        MultitaskModel(R3 + 1e-3j, np.eye(2))


def test_why_10_ctrl_c_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "proofs_check", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
