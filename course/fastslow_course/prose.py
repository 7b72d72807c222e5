"""The prose checker: every number in a notebook's text is printed or asserted by a code cell.

A learner trusts the sentences between the cells as much as the cells. A sentence such as
"the world has 4 shapes" that no cell prints drifts from the truth as soon as the code changes,
so ``make test`` runs this checker (``tests/test_prose.py``) on every notebook.

The rule. Each number in a markdown cell must appear, at the precision the text gives it, in
the source or the committed outputs of a code cell of the **same section** (the cells between
two ``##`` headings). Text in the sections named in :data:`ANYWHERE_SECTIONS` (the summary,
the exercises, the paper-vs-course table) may be backed by any cell of the notebook, since it
gathers what the sections measured. "83.5" is backed by a printed 83.5 or 83.48, "1,000" by
1000, "12x" by 12.

Not numbers of the text, and skipped: code spans and fenced code, LaTeX math, links' targets,
HTML comments, a heading's or a list item's own numbering, references to notebooks ("notebook
02", "02_slow") and to sections or exercises ("section 7", "exercise 4"), years (four digits
from 1990 to 2039), powers of ten written ``10^9``, and numbers inside words (``R@1``,
``float32``). Deliberate exceptions (the paper's own figures, say) are listed per notebook,
each with its reason, in ``notebooks/prose_exceptions.json``:
``{"01_fast": {"72.5": "the paper's Flickr30K R@1"}}``.

    python -m fastslow_course.prose [notebooks/*.ipynb]

Taught in no notebook: it checks them all (the README's "How the numbers are checked").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastslow_lib.core.paths import repo_root

__all__ = ["ANYWHERE_SECTIONS", "Unbacked", "check_notebook", "main", "numbers_in_prose",
           "numbers_in_text"]

ANYWHERE_SECTIONS: tuple[str, ...] = ("summary", "exercises", "the paper vs this course")
"""Sections (lower-cased heading starts) whose numbers may be backed anywhere in the notebook."""

EXCEPTIONS_NAME = "prose_exceptions.json"

_SKIP = [
    re.compile(r"```.*?```", re.DOTALL),  # fenced code
    re.compile(r"`[^`]*`"),  # code spans
    re.compile(r"\$\$.*?\$\$", re.DOTALL),  # display math
    re.compile(r"\$[^$\n]+\$"),  # inline math
    re.compile(r"<!--.*?-->", re.DOTALL),  # comments
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"(?m)^\s{0,3}#+\s*\d+(\.\d+)*\.?"),  # heading numbering: "## 3." / "### 3.1"
    re.compile(r"(?m)^\s*\d+\.\s"),  # numbered list items
    re.compile(r"\b\d\d_[a-z_]+"),  # notebook names: 02_slow
    re.compile(r"(?i)\bnotebooks?\s+\d\d(\s*(,|and|or|to|-)\s*\d\d)*"),  # notebook 02 (and 04)
    re.compile(r"(?i)\b(sections?|exercises?|steps?|cells?)\s+\d+(\s*(,|and|or|-)\s*\d+)*"),
    re.compile(r"\b10\^\{?-?\d+\}?"),  # powers of ten
    re.compile(r"\b(19[9]\d|20[0-3]\d)\b"),  # years
    re.compile(r"(?i)\barxiv[: ]\s*\d+\.\d+"),
]

_NUMBER = re.compile(r"(?<![\w.@/\\^-])[-+\u2212]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
                     r"(?=x(?!\w)|%|(?!\w))")


@dataclass(frozen=True)
class Unbacked:
    """A number of the text that no code cell of its section prints or asserts."""

    notebook: str
    cell: int
    section: str
    number: str
    context: str

    def __str__(self) -> str:
        return (f"{self.notebook} cell {self.cell} ({self.section}): {self.number!r} in "
                f"\"...{self.context}...\"")


def _strip(text: str) -> str:
    for pattern in _SKIP:
        text = pattern.sub(" ", text)
    return text


def numbers_in_prose(markdown: str) -> list[tuple[str, str]]:
    """``(number, context)`` for each number the checker reads in a markdown cell."""
    text = _strip(markdown)
    out = []
    for m in _NUMBER.finditer(text):
        number = m.group(0).lstrip("+-\u2212")
        start, end = max(0, m.start() - 30), min(len(text), m.end() + 30)
        out.append((number, " ".join(text[start:end].split())))
    return out


def numbers_in_text(text: str) -> set[str]:
    """Every number written in code or output text, without thousands separators."""
    return {m.group(0).lstrip("+-\u2212").replace(",", "")
            for m in re.finditer(r"[-+]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(e[-+]?\d+)?", text)}


def _backed(number: str, written: set[str]) -> bool:
    plain = number.replace(",", "")
    if plain in written:
        return True
    decimals = len(plain.split(".")[1]) if "." in plain else 0
    target = float(plain)
    for w in written:
        try:
            value = float(w)
        except ValueError:
            continue
        if round(value, decimals) == target:
            return True
    return False


def _cell_text(cell: Mapping[str, Any]) -> str:
    parts = ["".join(cell.get("source", ""))]
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]))
        for mime in ("text/plain", "text/markdown", "text/html"):
            data = out.get("data", {}).get(mime)
            if data:
                parts.append("".join(data))
    return "\n".join(parts)


def _sections(cells: list[Mapping[str, Any]]) -> list[str]:
    """The ``##`` section each cell belongs to (the notebook's title section before any)."""
    names, current = [], "title"
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                m = re.match(r"^##\s+(?:\d+\.\s*)?(.*)", line)
                if m:
                    current = m.group(1).strip().lower()
                    break
        names.append(current)
    return names


def _exceptions(notebook: Path) -> dict[str, str]:
    path = notebook.parent / EXCEPTIONS_NAME
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    mine = data.get(notebook.stem, {})
    empty = [n for n, why in mine.items() if not str(why).strip()]
    if empty:
        raise ValueError(f"{path.name}: exceptions for {notebook.stem} need a reason: {empty}")
    return mine


def check_notebook(path: str | Path) -> list[Unbacked]:
    """Every number in ``path``'s markdown cells that no code cell of its section backs."""
    path = Path(path)
    cells = json.loads(path.read_text())["cells"]
    sections = _sections(cells)
    written: dict[str, set[str]] = {}
    everywhere: set[str] = set()
    for cell, section in zip(cells, sections, strict=True):
        if cell.get("cell_type") == "code":
            nums = numbers_in_text(_cell_text(cell))
            written.setdefault(section, set()).update(nums)
            everywhere |= nums
    allowed = _exceptions(path)
    found = []
    for i, (cell, section) in enumerate(zip(cells, sections, strict=True)):
        if cell.get("cell_type") != "markdown":
            continue
        pool = (everywhere if section.startswith(ANYWHERE_SECTIONS)
                else written.get(section, set()))
        for number, context in numbers_in_prose("".join(cell.get("source", ""))):
            if number in allowed or _backed(number, pool):
                continue
            found.append(Unbacked(path.stem, i, section, number, context))
    return found


def main(argv: Iterable[str] | None = None) -> int:
    """Print every unbacked number; exit 1 if there is any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(list(argv) if argv is not None else None)
    paths = args.notebooks or sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    bad = [u for p in paths for u in check_notebook(p)]
    for u in bad:
        print(u)
    print(f"{len(bad)} number(s) in the prose of {len(paths)} notebook(s) that no cell prints "
          "or asserts")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
