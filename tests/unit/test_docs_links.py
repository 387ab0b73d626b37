"""Every relative link in the READMEs and docs/*.md leads somewhere: a file that exists, a heading there.

Links are read from the Markdown text outside code (fenced blocks and `inline code`), the way a
renderer would see them. Anchors are GitHub's heading slugs, since GitHub is where people read these
pages. Links leaving the checkout (`../shared/DESIGN.md`, beside it on this machine) and web
addresses are not followed: what they point at is not part of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "bench" / "README.md",
    ROOT / "infra" / "README.md",
]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
#: [text](target) and ![alt](target), the target up to whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[str]:
    """The page's lines outside fenced code blocks, with inline code spans blanked out."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0] * len(opened.group(1))
        elif fence is not None and line.lstrip().startswith(fence):
            fence = None
        elif fence is None:
            lines.append(CODE_SPAN.sub(lambda span: " " * len(span.group(0)), line))
    return lines


def links_of(page: Path) -> list[str]:
    return [match.group(1) for line in prose_lines(page.read_text()) for match in LINK.finditer(line)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces become hyphens."""
    text = heading.replace("`", "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading anchors by its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fence: str | None = None
    for line in page.read_text().splitlines():
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0] * len(opened.group(1))
            continue
        if fence is not None:
            if line.lstrip().startswith(fence):
                fence = None
            continue
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            anchors.add(base if count == 0 else f"{base}-{count}")
    return anchors


def relative_links() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for page in PAGES:
        for target in links_of(page):
            if urlsplit(target).scheme:  # https:, mailto:, ...
                continue
            found.append((str(page.relative_to(ROOT)), target))
    return found


LINKS = relative_links()


def link_cases() -> list[object]:
    return [pytest.param(page, target, id=f"{page}->{target}") for page, target in LINKS]


def test_the_pages_have_relative_links_to_check():
    # Given README.md and the docs pages, when their links are read, then there are some:
    # a parser that found nothing would make every test below pass vacuously.
    assert len(PAGES) > 10
    assert len(LINKS) > 20
    assert any("#" in target for _, target in LINKS)


def problem(source: Path, target: str, *, root: Path = ROOT) -> str | None:
    """What is wrong with a relative link from `source`, or None; a link leaving `root` is not judged."""
    path_part, _, anchor = target.partition("#")
    destination = (source.parent / unquote(path_part)).resolve() if path_part else source
    if not destination.is_relative_to(root):
        return None
    if not destination.exists():
        return "points at a missing file"
    if anchor and destination.suffix != ".md":
        return "has an anchor into a file that is not Markdown"
    if anchor and unquote(anchor) not in anchors_of(destination):
        return "names no heading there"
    return None


@pytest.mark.parametrize(("page", "target"), link_cases())
def test_a_relative_link_points_at_a_file_and_heading_that_exist(page, target):
    assert problem(ROOT / page, target) is None, f"{page}: {target} {problem(ROOT / page, target)}"


def test_the_slugs_follow_github():
    # Given headings as the pages write them, when slugged, then they match GitHub's anchors.
    assert slug("Moving the recovery account to another region") == "moving-the-recovery-account-to-another-region"
    assert slug("`devhost` and `make` targets") == "devhost-and-make-targets"
    assert slug("Secure by default, convenient locally") == "secure-by-default-convenient-locally"
    assert slug("README -> docs/") == "readme---docs"


def test_a_broken_link_or_anchor_is_found(tmp_path):
    # Given a page linking a missing file, a missing heading, a present one and (in code) nothing
    (tmp_path / "other.md").write_text("# Present\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text("[a](missing.md) [b](other.md#absent) [c](other.md#present) `[d](code.md)`\n")

    # When its links are read and judged
    judged = {target: problem(page, target, root=tmp_path) for target in links_of(page)}

    # Then the two broken ones are found, and the link in code is not a link
    assert judged == {
        "missing.md": "points at a missing file",
        "other.md#absent": "names no heading there",
        "other.md#present": None,
    }
