"""The repository stands on its own: nothing in it points outside it.

Every tracked text file (code, docs, docstrings, comments, the generated appendix, claim
files added later) is scanned for

* the file name of the team's input notes (upper-case ``THEORY`` with the ``.md`` suffix, or
  ``THEORY`` alone used as a document name); this file spells it only in pieces, so that
  ``grep -r`` for the name over the repository finds nothing
  and the input files kept beside them;
* relative paths that climb out of the repository (``../<folder>/...`` from the root,
  ``../../x`` from ``docs/``), and ``~/...``;
* absolute paths other than system locations a script may write to or call
  (``/tmp``, ``/dev``, ``/usr``, ``/bin``, ``/etc``, ``/proc``, ``/sys``, ``/opt``).

It also checks that claim sources cite no section, equation or theorem number of a text the
project has not seen (numbers of the repository's own pages are fine).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Names of the input notes that are not part of the repository.
NAME_PATTERNS = (
    re.compile(r"THEORY\.md"),  # upper case: docs/theory.md is the project's own page
    re.compile(r"\bTHEORY\b(?!_)"),  # the notes' name used as a noun ("THEORY's form")
    re.compile(r"seed-abstract", re.IGNORECASE),
)
_REL = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-]+)")
_ABS = re.compile(r"/[A-Za-z][\w.-]*/[\w.-]+")
_OPENERS = " \t\n([{<>=,`"
_QUOTES = "'\""


def _starts_a_path(text: str, i: int) -> bool:
    """Whether the ``/`` at ``text[i]`` begins an absolute path rather than continuing
    an expression (``a/b``, ``"$tmp"/dist``, ``https://x/y``)."""
    before = text[i - 1] if i else "\n"
    if before in _QUOTES:
        before = text[i - 2] if i >= 2 else "\n"
        return before in _OPENERS or before in _QUOTES
    return before in _OPENERS


_HOME = re.compile(r"(?<![\w/])~/[\w.-]")
SYSTEM_PREFIXES = ("/tmp/", "/dev/", "/usr/", "/bin/", "/etc/", "/proc/", "/sys/", "/opt/")

#: This file names what it guards against.
SELF = "tests/test_self_contained.py"
#: The notes' file name, assembled so that it does not occur literally in this file.
_NOTES = "THEORY" + ".md"
#: The sibling folder the input notes live in, spelled in pieces so no file here names it.
_SIBLING = "sha" + "red"


def outside_references(rel_path: str, text: str) -> list[str]:
    """The references in ``text`` (file ``rel_path`` of the repository) that lead outside it."""
    found = []
    for pat in NAME_PATTERNS:
        found += [f"name {m.group(0)!r}" for m in pat.finditer(text)]
    base = PurePosixPath(rel_path).parent
    for m in _REL.finditer(text):
        depth = len(base.parts) - m.group(1).count("../")
        if depth < 0:
            found.append(f"path {m.group(0)!r} leaves the repository")
    for m in _ABS.finditer(text):
        if _starts_a_path(text, m.start()) and not m.group(0).startswith(SYSTEM_PREFIXES):
            found.append(f"absolute path {m.group(0)!r}")
    found += [f"home path {m.group(0)!r}" for m in _HOME.finditer(text)]
    return found


def tracked_text_files() -> list[tuple[str, str]]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing to scan")
    files = []
    for rel in out.decode().split("\0"):
        if not rel:
            continue
        p = ROOT / rel
        if not p.is_file():
            continue
        data = p.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (figures)
        files.append((rel, data.decode("utf-8", errors="replace")))
    return files


def test_no_tracked_file_points_outside_the_repository():
    files = tracked_text_files()
    assert len(files) > 50
    bad = []
    for rel, text in files:
        if rel == SELF:
            continue
        for ref in outside_references(rel, text):
            bad.append(f"{rel}: {ref}")
    assert not bad, "references outside the repository:\n" + "\n".join(bad[:50])


def test_the_scan_catches_every_kind_of_outside_reference():
    planted = {
        "docs/x.md": "see `../" + _SIBLING + "/" + _NOTES + "` section 3",
        "numerics/y.py": '"""The model of ' + _NOTES + ' §2."""',
        "docs/z.md": "THEORY's form is wrong",
        "docs/w.md": "as in ../../" + _SIBLING + "/notes.txt",
        "README.md": "the abstract in seed-abstract.txt",
        "tests/t.py": "open('/work/shared/data.csv')",
        "docs/a.md": "the notes in /home/someone/notes.md and `/work/x/y`",
        "bench/b.py": "Path('~/results')  # ~/results/run.json",
    }
    for rel, text in planted.items():
        assert outside_references(rel, text), (rel, text)
    fine = {
        "docs/x.md": "see `docs/theory.md`, `../README.md` and ../numerics/gla.py; theory_form; Theory",
        ".ci/run": "> /tmp/gla-verify-apt.log 2>&1; command -v /usr/bin/env; x > /dev/null",
        "numerics/z.py": "T_p = Σλ^p/(bλ+c)², 1/λ_max, https://example.org/a/b, a/b/c",
        ".ci/check": 'sdist=$(ls "$tmp"/dist/pkg-*.tar.gz); x=${dir}/build/y',
    }
    for rel, text in fine.items():
        assert not outside_references(rel, text), (rel, outside_references(rel, text))


# --------------------------------------------------------------------- claim sources

_CITED_NUMBER = re.compile(
    r"§\s*\d|\b(section|sec\.|eq\.|equation|theorem|thm\.|lemma|proposition|prop\.|corollary|"
    r"appendix|table|figure|fig\.)\s*\(?[A-Z]?\d",
    re.IGNORECASE,
)
_OWN_PAGE_NUMBER = re.compile(
    r"(docs/[\w/.-]+\.md|`[\w/.-]+\.md`)\s*,?\s*(§|section)\s*\d+", re.IGNORECASE
)


def unseen_citations(source: str) -> list[str]:
    """Section/equation/theorem numbers in ``source`` that do not refer to a page of the repository."""
    return [m.group(0) for m in _CITED_NUMBER.finditer(_OWN_PAGE_NUMBER.sub("", source))]


def test_citation_scan_can_fail():
    assert unseen_citations("paper §3 (construction)")
    assert unseen_citations("Theorem 2 of the paper")
    assert unseen_citations("paper, Section 4.1")
    assert not unseen_citations("derived here (docs/landscape.md section 4); Ahn et al. 2023")
    assert not unseen_citations('abstract: "We show that a multilayer GLA can implement ..."')


def test_claim_sources_cite_no_unseen_section_numbers():
    from proofs_check.registry import all_claims

    bad = {cid: unseen_citations(str(c.source)) for cid, c in all_claims().items()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"sources cite numbers of texts the project has not seen: {bad}"
