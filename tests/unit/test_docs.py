"""The repository carries its own references: code, playbooks and tests cite docs/, which
exists, and docs/domain.md covers every built-in check."""

from __future__ import annotations

import re
from pathlib import Path

from fleet.checks.registry import CHECKS

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CITING = ("fleet", "playbooks", "tests", "bench")
# Documents that live outside the repository: nothing may send a reader there.
OUTSIDE = re.compile(r"\b(DESIGN|DOMAIN|STYLE)\.md\b|/work/shared")
CITED = re.compile(r"\bdocs/([a-z_-]+\.md)\b")


def sources() -> list[Path]:
    here = Path(__file__).resolve()
    out = []
    for top in CITING:
        for path in (REPO / top).rglob("*"):
            if path.suffix in (".py", ".ps1", ".yml", ".yaml", ".md") and path != here:
                out.append(path)
    return out


def test_nothing_cites_a_document_outside_the_repository() -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not wrong


def test_every_cited_document_exists() -> None:
    cited = {
        name
        for path in [*sources(), REPO / "README.md"]
        for name in CITED.findall(path.read_text(encoding="utf-8"))
    }
    assert cited, "nothing cites docs/"
    assert {name for name in cited if not (DOCS / name).is_file()} == set()


def test_the_readme_links_the_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("architecture.md", "contracts.md", "domain.md"):
        assert f"docs/{name}" in readme


def test_domain_has_a_row_for_every_check() -> None:
    domain = (DOCS / "domain.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", domain, re.M))
    assert rows == set(CHECKS)
