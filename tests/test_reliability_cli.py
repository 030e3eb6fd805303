"""Reliability: the CLI error matrix (every bad input -> its exit status and a one-line
message naming the problem, before any computation), exit statuses with one meaning,
no traceback unless --debug, and the validated report schema of ``appendix --from``.

See docs/reliability.md for the promises these tests keep.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proofs_check import cli, output, registry
from proofs_check.cli import main
from proofs_check.registry import Claim, Evidence, at_most, holds
from proofs_check.report import build_report
from proofs_check.schema import SCHEMA_VERSION, validate_report
from proofs_check.sweep import forked as cli_forked

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def fake_claims(monkeypatch):
    """A registry of two cheap claims that count how often a check ran."""
    import proofs_check.api as api

    class Ran(list):
        reg: dict

    reg, ran = {}, Ran()
    ran.reg = reg
    for mod in (registry, api, cli):
        monkeypatch.setattr(mod, "all_claims", lambda: dict(reg))
    ok = Claim("T1", "passes", r"1 = 1", "test")

    def check(ctx):
        ran.append(ctx.seed)
        return Evidence("num", "numeric", [at_most("error", 0.0, 1e-12)])

    ok.check("num", leg="numerics")(check)
    ok.check("sym", leg="theory")(
        lambda ctx: Evidence("sym", "symbolic", [holds("verified", True)])
    )
    bad = Claim("T2", "fails", r"1 = 2", "test")
    bad.check("num", leg="numerics")(
        lambda ctx: Evidence("num", "numeric", [at_most("error", 1.0, 0.1)])
    )
    reg.update(T1=ok, T2=bad)
    return ran


def _report(ids=("T1",)):
    c = Claim("T1", "passes", r"1 = 1", "test")
    c.check("sym", leg="theory")(lambda ctx: Evidence("sym", "symbolic", [holds("verified", True)]))
    return build_report(
        [c.run(registry.Context())], {"seed": 0, "profile": "quick", "ids": list(ids)}
    )


def _broken_reports():
    """(name, document, expected fragment of the message): each report fails validation."""
    good = _report()
    cases = [
        ("null", None, "got null"),
        ("list", [], "expected a JSON object, got a list"),
        ("no-schema", {k: v for k, v in good.items() if k != "schema"}, "missing key 'schema'"),
        ("schema-99", {**good, "schema": 99}, "schema version 99"),
        ("schema-str", {**good, "schema": "1"}, "schema: expected an integer"),
    ]
    for key in ("summary", "claims", "settings", "versions", "tool", "created"):
        cases.append(
            (f"missing-{key}", {k: v for k, v in good.items() if k != key}, f"missing key {key!r}")
        )
    r = json.loads(json.dumps(good))
    r["claims"][0]["evidence"][0]["passed"] = "yes"
    cases.append(
        ("wrong-type-passed", r, "claims[0].evidence[0].passed: expected a boolean, got a string")
    )
    r = json.loads(json.dumps(good))
    r["claims"][0]["evidence"] = None
    cases.append(("null-evidence", r, "claims[0].evidence: expected a list, got null"))
    r = json.loads(json.dumps(good))
    del r["claims"][0]["id"]
    cases.append(("missing-claim-id", r, "claims[0]: missing key 'id'"))
    r = json.loads(json.dumps(good))
    r["claims"][0]["evidence"][0]["criteria"][0]["passed"] = None
    cases.append(
        (
            "null-criterion",
            r,
            "claims[0].evidence[0].criteria[0].passed: expected a boolean, got null",
        )
    )
    r = json.loads(json.dumps(good))
    r["summary"]["seconds"] = True
    cases.append(("bool-seconds", r, "summary.seconds: expected a number, got a boolean"))
    r = json.loads(json.dumps(good))
    r["summary"]["failed"] = 3
    cases.append(("inconsistent-summary", r, "summary: says"))
    r = json.loads(json.dumps(good))
    r["claims"][0]["status"] = "FAIL"
    cases.append(("status-contradicts", r, "contradicts its evidence"))
    r = json.loads(json.dumps(good))
    r["claims"][0]["status"] = "maybe"
    cases.append(("status-enum", r, "claims[0].status: expected one of 'pass', 'FAIL'"))
    return cases


def _matrix(tmp: Path):
    """(id, argv, exit status, regex fragment of the message). Built on files in ``tmp``."""
    (tmp / "notes.txt").write_text("mine")
    (tmp / "paper").mkdir()
    (tmp / "paper" / "thesis.tex").write_text("mine")
    (tmp / "link").symlink_to(tmp / "paper")
    (tmp / "good.json").write_text(json.dumps(_report()))
    (tmp / "bad.json").write_text("{not json")
    rows = [
        ("seed-negative", ["run", "T1", "--seed", "-1"], 2, "--seed: must be an integer in"),
        ("seed-text", ["run", "T1", "--seed", "x"], 2, "--seed: must be an integer"),
        ("seed-huge", ["run", "T1", "--seed", str(2**63)], 2, "--seed: must be an integer in"),
        ("unknown-id", ["run", "NOPE"], 2, "unknown claim id"),
        ("json-empty", ["run", "T1", "--json", ""], 2, "--json: empty path"),
        ("json-dir", ["run", "T1", "--json", str(tmp)], 2, "--json: .* is a directory"),
        (
            "json-trailing-sep",
            ["run", "T1", "--json", str(tmp / "new") + os.sep],
            2,
            "--json: .* names a directory",
        ),
        (
            "json-under-file",
            ["run", "T1", "--json", str(tmp / "notes.txt" / "r.json")],
            2,
            "is not a directory",
        ),
        (
            "json-proc",
            ["run", "T1", "--json", "/proc/gla-verify/r.json"],
            3,
            "--json: cannot write",
        ),
        (
            "out-file",
            ["appendix", "T1", "--no-figures", "--out", str(tmp / "notes.txt")],
            2,
            "--out: .* is a file",
        ),
        (
            "out-symlink",
            ["appendix", "T1", "--no-figures", "--out", str(tmp / "link")],
            2,
            "--out: .* is a symlink",
        ),
        (
            "out-foreign-dir",
            ["appendix", "T1", "--no-figures", "--out", str(tmp / "paper")],
            2,
            "did not write .* touch .*gla-verify-appendix",
        ),
        ("out-empty", ["appendix", "T1", "--no-figures", "--out", ""], 2, "--out: empty path"),
        (
            "out-proc",
            ["appendix", "T1", "--no-figures", "--out", "/proc/gla-verify-out"],
            3,
            "--out: cannot write",
        ),
        (
            "out-under-file",
            ["appendix", "T1", "--no-figures", "--out", str(tmp / "notes.txt" / "app")],
            2,
            "is not a directory",
        ),
        ("appendix-seed", ["appendix", "T1", "--seed", "-1"], 2, "--seed"),
        (
            "appendix-unknown-id",
            ["appendix", "NOPE", "--out", str(tmp / "a1")],
            2,
            "unknown claim id",
        ),
        (
            "from-and-ids",
            ["appendix", "T1", "--from", str(tmp / "good.json"), "--out", str(tmp / "a2")],
            2,
            "not both",
        ),
        (
            "from-missing",
            ["appendix", "--from", str(tmp / "nope.json"), "--out", str(tmp / "a3")],
            2,
            "no such file",
        ),
        (
            "from-dir",
            ["appendix", "--from", str(tmp), "--out", str(tmp / "a4")],
            2,
            "is a directory",
        ),
        (
            "from-not-json",
            ["appendix", "--from", str(tmp / "bad.json"), "--out", str(tmp / "a5")],
            2,
            "not valid JSON",
        ),
        (
            "from-empty",
            ["appendix", "--from", "", "--out", str(tmp / "a6")],
            2,
            "--from: empty path",
        ),
        (
            "from-good-out-foreign",
            [
                "appendix",
                "--from",
                str(tmp / "good.json"),
                "--no-figures",
                "--out",
                str(tmp / "paper"),
            ],
            2,
            "did not write",
        ),
        ("stress-seed", ["stress", "L5", "--seed", "-1"], 2, "--seed"),
        ("stress-unknown", ["stress", "NOPE"], 2, "unknown claim id"),
        ("stress-examples", ["stress", "L5", "--examples", "-1"], 2, "--examples"),
        (
            "stress-json-empty",
            ["stress", "L5", "--examples", "1", "--json", ""],
            2,
            "--json: empty path",
        ),
        (
            "stress-json-dir",
            ["stress", "L5", "--examples", "1", "--json", str(tmp)],
            2,
            "is a directory",
        ),
        ("unknown-command", ["frobnicate"], 2, "invalid choice"),
        ("no-command", [], 2, "required"),
    ]
    for name, doc, frag in _broken_reports():
        p = tmp / f"broken-{name}.json"
        p.write_text(json.dumps(doc))
        rows.append(
            (
                f"from-{name}",
                ["appendix", "--from", str(p), "--out", str(tmp / f"out-{name}")],
                2,
                __import__("re").escape(frag),
            )
        )
    if not IS_ROOT:  # root writes anywhere: permission bits cannot make a place read-only
        ro = tmp / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        rows.append(
            ("json-readonly", ["run", "T1", "--json", str(ro / "r.json")], 3, "Permission denied")
        )
        rows.append(
            (
                "out-readonly",
                ["appendix", "T1", "--no-figures", "--out", str(ro / "app")],
                3,
                "Permission denied",
            )
        )
    return rows


def test_cli_error_matrix(fake_claims, tmp_path, capsys, monkeypatch):
    """Each bad input: its exit status, a one-line message naming the problem on stderr,
    no traceback, no computation started, nothing written, the user's files untouched."""
    import re

    monkeypatch.chdir(tmp_path)
    rows = _matrix(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()}
    tried = 0
    for name, argv, code, pattern in rows:
        try:
            got = main(argv)
        except SystemExit as exc:  # argparse usage errors
            got = exc.code
        out, err = capsys.readouterr()
        assert got == code, f"{name}: exit {got}, expected {code}; stderr: {err}"
        assert re.search(pattern, err), f"{name}: message {err!r} does not match {pattern!r}"
        assert "Traceback" not in err + out, name
        assert fake_claims == [], f"{name}: a check ran before the input was refused"
        tried += 1
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before  # nothing written, nothing deleted
    assert tried >= 45
    print(f"bad inputs tried: {tried}")


def test_exit_status_has_one_meaning(fake_claims, tmp_path, capsys, monkeypatch):
    assert main(["run", "T1", "-q"]) == cli.EXIT_OK
    assert main(["run", "T1", "T2", "-q"]) == cli.EXIT_FALSE
    # an I/O failure after the run (disk full at the final rename) is 3, never 1
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith("r.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", full)
    assert main(["run", "T1", "-q", "--json", str(tmp_path / "r.json")]) == cli.EXIT_ENV
    assert "No space left on device" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # the temporary file was removed
    monkeypatch.setattr(output.os, "replace", real_replace)

    # an interrupt is 130 with one line; a bug is 3 with a hint, the traceback only with --debug
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_run", interrupted)
    assert main(["run", "T1"]) == cli.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err

    def bug(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_cmd_run", bug)
    assert main(["run", "T1"]) == cli.EXIT_ENV
    err = capsys.readouterr().err
    assert (
        "internal error: RuntimeError: boom" in err and "--debug" in err and "Traceback" not in err
    )
    assert main(["--debug", "run", "T1"]) == cli.EXIT_ENV
    assert "Traceback" in capsys.readouterr().err
    assert main(["run", "T1", "--debug"]) == cli.EXIT_ENV
    assert "Traceback" in capsys.readouterr().err


def test_exit_codes_documented_in_help_and_readme(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text_run = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    for code, meaning in cli.EXIT_CODES.items():
        assert f"{code:<4} {meaning}" in text and f"{code:<4} {meaning}" in text_run
        assert f"| {code} |" in readme, code
    assert "--debug" in text


def test_seed_minus_one_is_a_usage_error_not_a_false_claim(capsys):
    """On the old main ``run C1 --seed -1`` reported C1 as FAILED (exit 1)."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "C1", "--seed", "-1", "-q"])
    assert exc.value.code == 2
    with pytest.raises(output.UsageError, match="seed"):
        cli.run_claims(["C1"], seed=-1, profile="quick")


def test_report_schema_round_trip(fake_claims, tmp_path):
    path = tmp_path / "r.json"
    assert main(["run", "T1", "-q", "--json", str(path)]) == 0
    rep = json.loads(path.read_text())
    assert rep["schema"] == SCHEMA_VERSION
    assert validate_report(rep) is rep
    out = tmp_path / "app"
    assert main(["appendix", "--from", str(path), "--no-figures", "-q", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text()) == rep
    for name, doc, frag in _broken_reports():
        with pytest.raises(output.UsageError) as exc:
            validate_report(doc, "r.json")
        assert frag in str(exc.value), name


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_ctrl_c_is_130_without_traceback(tmp_path):
    """A real SIGINT to a running ``gla-verify run``: exit 130, one line, no traceback,
    the --json target not created."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "proofs_check", "run", "--json", str(tmp_path / "r.json")],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()  # the first progress line: claims are running
    assert line, "no progress before the interrupt"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "r.json").exists()


def _run_with_group_sigint(tmp_path, name, wait_for, delay=0.0):
    """``gla-verify run C3 --workers 1`` in its own process group; ``delay`` seconds after a
    progress line containing ``wait_for`` appears, SIGINT goes to the whole group, as a
    terminal's Ctrl-C does (the worker processes get it too). Returns ``(returncode, stderr)``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "proofs_check", "run", "C3", "--workers", "1"]
        + ["--json", str(tmp_path / name)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if wait_for in line:
            break
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    return proc.returncode, "".join(seen) + err


def test_ctrl_c_to_the_process_group_with_forked_workers(tmp_path):
    """A terminal's Ctrl-C reaches the worker processes too: they ignore it (SIGINT is blocked
    while they are forked) and the driver exits 130, at once after the announcement of the
    workers or once the claims run, without a traceback (the Dask cluster `run` used before
    printed Dask's teardown of a half-built cluster and the workers' own KeyboardInterrupt
    tracebacks)."""
    code, err = _run_with_group_sigint(tmp_path, "start.json", "forked worker")
    assert "Traceback" not in err, err
    assert code == 130, (code, err)
    code, err = _run_with_group_sigint(tmp_path, "running.json", "C3:")
    assert "Traceback" not in err, err
    assert code == 130 and "interrupted" in err, (code, err)
    assert not (tmp_path / "running.json").exists()


_LOCAL_CLUSTER_SCRIPT = """
import sys, time
from proofs_check.sweep.engine import Pool
if __name__ == "__main__":
    print("starting", flush=True)
    try:
        with Pool(workers=1) as pool:
            print("started", pool.map(pow, [(2, 3)]), flush=True)
            time.sleep(120)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
"""


def test_ctrl_c_to_the_process_group_with_a_local_dask_cluster(tmp_path):
    """The local Dask cluster of ``sweep`` and ``stress --workers`` (spawned workers): a
    terminal's Ctrl-C while it starts is dropped, one after start-up stops it (130), and neither
    prints a traceback (before: Dask's teardown of a half-built cluster at exit and the workers'
    own KeyboardInterrupt tracebacks)."""
    script = tmp_path / "cluster.py"
    script.write_text(_LOCAL_CLUSTER_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout.readline().strip() == "starting"
    time.sleep(1.5)  # the worker is importing the stack (start-up takes 2-12 s)
    os.killpg(proc.pid, signal.SIGINT)
    line = proc.stdout.readline()  # "started [8]", or "" if start-up was already over
    if line:
        assert line.startswith("started"), line
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode == 130 and "interrupted" in err, (proc.returncode, err)


def test_environment_failure_inside_a_check_is_not_a_false_claim(fake_claims, monkeypatch, capsys):
    """A check that cannot read its data (OSError), runs out of memory or lacks a dependency
    gives no verdict: exit 3, never 1."""
    reg = fake_claims.reg
    for exc in (
        FileNotFoundError(2, "No such file or directory", "docs/data/x.csv"),
        MemoryError(),
        ModuleNotFoundError("No module named 'cvxpy'", name="cvxpy"),
    ):
        c = Claim("T9", "env", r"?", "test")

        def boom(ctx, exc=exc):
            raise exc

        c.check("io", leg="numerics")(boom)
        reg["T9"] = c
        assert main(["run", "T9", "-q"]) == cli.EXIT_ENV
        err = capsys.readouterr().err
        assert "Traceback" not in err and (
            "docs/data/x.csv" in err or "out of memory" in err or "'cvxpy' is missing" in err
        )


def test_missing_dependency_is_an_environment_error(fake_claims, monkeypatch, capsys):
    """A dependency that is not installed (here threadpoolctl, which every worker imports
    first) is one line naming the package and exit 3, before any worker is forked: the
    workers used to die at their first line, leaving only "a worker process died"."""
    forked = []
    monkeypatch.setattr(
        cli_forked.mp, "get_context", lambda *a: forked.append(a) or pytest.fail("forked")
    )
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import raises ModuleNotFoundError
    assert main(["run", "T1", "-q", "--workers", "2"]) == cli.EXIT_ENV
    err = capsys.readouterr().err
    assert "'threadpoolctl' is missing" in err and "pip install" in err, err
    assert "Traceback" not in err and not forked
