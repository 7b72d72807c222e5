"""docs/INSTRUCTOR.md, the instructor's guide, checked against the notebooks it describes.

The guide quotes the notebooks' section headings, states the words of text behind each block of
its three-hour agenda, keys every exercise and quotes the error messages learners meet. These
tests fail when the course changes under it: a notebook, section or exercise added, renamed or
removed; a checker renamed; a message reworded; a block's text grown past its planned minutes;
or a schedule longer than three hours. Each check is a function that returns its problems, so
the last tests can show that each one does fail on a broken guide. Nothing here imports torch.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "INSTRUCTOR.md"
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CHECKERS = ROOT / "course" / "fastslow_course" / "exercises.py"
#: Where the messages the guide quotes must come from (and the notebooks' code cells).
SOURCES = (*sorted((ROOT / "fastslow_lib").rglob("*.py")),
           *sorted((ROOT / "course" / "fastslow_course").rglob("*.py")),
           *sorted((ROOT / "scripts").glob("*.py")), ROOT / "Makefile")

WORKSHOP_MINUTES = 180
WORDS_PER_MINUTE = 200
#: How far a stated word count may drift from the notebook's before the guide is stale.
WORD_TOLERANCE = 0.1
WORD_SLACK = 25

HEADING = re.compile(r"^(#{1,6}) +(\S.*?)\s*$")
CODE_SPAN = re.compile(r"`([^`]+)`")
QUOTED_HEADING = re.compile(r"^#{1,6} \S")
NOTEBOOK_NAME = re.compile(r"\b\d\d_\w+\.ipynb\b")
EXERCISE_ITEM = re.compile(r"^(\d+)\.\s+\*\*([^*]+?)\*\*", re.MULTILINE)
EXERCISE_HEADING = re.compile(r"^Exercise (\d+)\. \*\*([^*]+?)\*\*$")
CHECKER_CALL = re.compile(r"\bcourse\.(check_\w+)\(")
CHECKER_NAME = re.compile(r"\b(check_\w+)\b")
PART_LABEL = re.compile(
    r"^\*\*(Core path|Optional deep dives)\*\* \(([\d,]+) words, (\d+) code cells"
    r"(?:; about (\d+) minutes of reading)?\)")
SCHEDULE_ROW = re.compile(r"^\|\s*(\d+):(\d\d)\s*\|\s*(\d+)\s*\|(.*)\|\s*$")
DOUBLE_QUOTED = re.compile(r'"(#{1,6} [^"]+)"')
RESULTS_FILE = re.compile(r"\bresults/([\w.-]+\.json)\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")


# --------------------------------------------------------------------------------------------
# Reading the notebooks and the guide
# --------------------------------------------------------------------------------------------


def count_words(line: str) -> int:
    """Whitespace-separated tokens holding a letter or a digit (the guide's definition)."""
    return sum(1 for token in line.split() if re.search(r"[A-Za-z0-9]", token))


@dataclass
class Notebook:
    """What the guide needs of a notebook: its headings, their text and code, its exercises."""

    name: str
    headings: list[str] = field(default_factory=list)
    words: dict[str, int] = field(default_factory=dict)
    code_cells: dict[str, int] = field(default_factory=dict)
    exercises: dict[int, str] = field(default_factory=dict)
    checkers: set[str] = field(default_factory=set)


@cache
def read_notebook(path: Path) -> Notebook:
    """Headings (as written, with their hashes), words and code cells under each, exercises."""
    nb = Notebook(path.name)
    cells = json.loads(path.read_text())["cells"]
    section: str | None = None
    fenced = False
    exercise_lines: list[str] = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            if section is not None:
                nb.code_cells[section] += 1
            nb.checkers.update(CHECKER_CALL.findall(source))
            continue
        if cell["cell_type"] != "markdown":
            continue
        for line in source.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and HEADING.match(line):
                section = line.strip()
                if section not in nb.words:
                    nb.headings.append(section)
                    nb.words[section] = nb.code_cells[section] = 0
                continue
            if section is not None:
                nb.words[section] += count_words(line)
                if section == "## Exercises":
                    exercise_lines.append(line)
    for number, title in EXERCISE_ITEM.findall("\n".join(exercise_lines)):
        nb.exercises[int(number)] = " ".join(title.split())
    return nb


@dataclass
class Section:
    """A heading of the guide and the lines under it, down to the next heading of any level."""

    level: int
    title: str
    lines: list[str]


def guide_sections(text: str) -> list[Section]:
    """The guide's headings in order, fenced code blocks skipped (their ``#`` are comments)."""
    sections: list[Section] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            sections.append(Section(len(match.group(1)), match.group(2), []))
        elif sections:
            sections[-1].lines.append(line)
    return sections


def part_of(text: str, fragment: str) -> list[Section]:
    """The level-2 section whose title holds ``fragment``, with everything below it."""
    sections = guide_sections(text)
    starts = [i for i, s in enumerate(sections) if s.level == 2 and fragment in s.title]
    if len(starts) != 1:
        return []
    out = [sections[starts[0]]]
    for s in sections[starts[0] + 1:]:
        if s.level <= 2:
            break
        out.append(s)
    return out


def notebook_blocks(part: list[Section]) -> dict[str, list[Section]]:
    """Within a part, each ``### NN_name.ipynb`` subsection with its deeper headings."""
    blocks: dict[str, list[Section]] = {}
    current: list[Section] | None = None
    for s in part[1:]:
        if s.level <= 3:
            current = None
            if s.level == 3 and NOTEBOOK_NAME.fullmatch(s.title):
                current = blocks.setdefault(s.title, [])
        if current is not None:
            current.append(s)
    return blocks


def agenda(text: str) -> list[Section]:
    return part_of(text, "agenda")


def solutions(text: str) -> list[Section]:
    return part_of(text, "Solutions key")


def failures(text: str) -> list[Section]:
    return part_of(text, "Common failures")


@cache
def guide_text() -> str:
    return GUIDE.read_text()


@cache
def source_text() -> str:
    """The library, the course's tooling, the scripts, the Makefile and the notebooks' code."""
    notebook_code = ["".join(cell["source"]) for path in NOTEBOOKS
                     for cell in json.loads(path.read_text())["cells"]
                     if cell["cell_type"] == "code"]
    return "\n".join([*(path.read_text() for path in SOURCES), *notebook_code])


@cache
def defined_checkers() -> set[str]:
    tree = ast.parse(CHECKERS.read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")}


# --------------------------------------------------------------------------------------------
# The checks: each returns its problems, empty when the guide fits the course
# --------------------------------------------------------------------------------------------


def missing_notebooks(text: str, notebooks: list[Notebook]) -> list[str]:
    """Every notebook has a ``### file`` subsection in the agenda and in the solutions key, and
    neither names a notebook that does not exist."""
    names = {nb.name for nb in notebooks}
    problems = []
    for label, part in (("agenda", agenda(text)), ("solutions key", solutions(text))):
        if not part:
            problems.append(f"the guide has no {label} section")
            continue
        have = set(notebook_blocks(part))
        problems += [f"{label}: no '### {n}' subsection" for n in sorted(names - have)]
        problems += [f"{label}: '### {n}' names no notebook" for n in sorted(have - names)]
    return problems


def parts_of_block(block: list[Section]) -> dict[str, tuple[int, int, int | None, list[str]]]:
    """``{"Core path" | "Optional deep dives": (words, code cells, reading minutes, headings)}``
    as the agenda states them: each bold label's figures and the headings its bullets quote."""
    parts: dict[str, tuple[int, int, int | None, list[str]]] = {}
    label = None
    for line in (line for s in block for line in s.lines):
        match = PART_LABEL.match(line)
        if match:
            label = match.group(1)
            minutes = int(match.group(4)) if match.group(4) else None
            parts[label] = (int(match.group(2).replace(",", "")), int(match.group(3)), minutes, [])
        elif line.startswith("**"):
            label = None
        elif label is not None and line.startswith("- `#"):
            span = CODE_SPAN.search(line)
            if span is not None:
                parts[label][3].append(span.group(1))
    return parts


def agenda_problems(text: str, nb: Notebook) -> list[str]:
    """The agenda's subsection for ``nb``: every heading it quotes is one of the notebook's, each
    heading is placed once (core or optional), and the stated words, code cells and reading
    minutes are the notebook's."""
    block = notebook_blocks(agenda(text)).get(nb.name)
    if block is None:
        return [f"the agenda has no subsection for {nb.name}"]
    problems = []
    quoted = [span for s in block for line in s.lines for span in CODE_SPAN.findall(line)
              if QUOTED_HEADING.match(span)]
    problems += [f"quotes {q!r}, which is not a heading of {nb.name}"
                 for q in quoted if q not in nb.words]
    parts = parts_of_block(block)
    for label in ("Core path", "Optional deep dives"):
        if label not in parts:
            problems.append(f"no '**{label}** (N words, M code cells...)' line")
    placed = [h for _, _, _, headings in parts.values() for h in headings]
    problems += [f"places {h!r} twice" for h in sorted({h for h in placed if placed.count(h) > 1})]
    problems += [f"does not place {h!r} (core or optional)" for h in nb.headings if h not in placed]
    for label, (words, cells, minutes, headings) in parts.items():
        known = [h for h in headings if h in nb.words]
        actual_words = sum(nb.words[h] for h in known)
        actual_cells = sum(nb.code_cells[h] for h in known)
        if abs(words - actual_words) > max(WORD_SLACK, WORD_TOLERANCE * actual_words):
            problems.append(f"{label}: states {words:,} words, the notebook has {actual_words:,}")
        if abs(cells - actual_cells) > 2:
            problems.append(f"{label}: states {cells} code cells, the notebook has {actual_cells}")
        if minutes is not None and minutes != math.ceil(words / WORDS_PER_MINUTE):
            problems.append(f"{label}: {words:,} words are {math.ceil(words / WORDS_PER_MINUTE)} "
                            f"minutes at {WORDS_PER_MINUTE} a minute, not {minutes}")
    return [f"{nb.name}: {p}" for p in problems]


def schedule_rows(text: str) -> list[tuple[int, int, str]]:
    """``(start minute, minutes, block)`` of each row of the agenda's schedule table."""
    part = agenda(text)
    table = next((s for s in part if s.title == "The schedule"), None)
    if table is None:
        return []
    rows = []
    for line in table.lines:
        match = SCHEDULE_ROW.match(line)
        if match:
            start = 60 * int(match.group(1)) + int(match.group(2))
            rows.append((start, int(match.group(3)), match.group(4).strip()))
    return rows


def schedule_problems(text: str, notebooks: list[Notebook]) -> list[str]:
    """The schedule fits three hours, its start times add up, each notebook has one block, and
    each block holds at least the reading minutes its core path states."""
    rows = schedule_rows(text)
    if not rows:
        return ["the agenda has no '### The schedule' table"]
    problems = []
    total = sum(minutes for _, minutes, _ in rows)
    if total > WORKSHOP_MINUTES:
        problems.append(f"the schedule plans {total} minutes, more than {WORKSHOP_MINUTES}")
    clock = rows[0][0]
    for start, minutes, block in rows:
        if start != clock:
            problems.append(f"{block[:40]!r} starts at {start // 60}:{start % 60:02d}, "
                            f"the rows before it end at {clock // 60}:{clock % 60:02d}")
        clock = start + minutes
    blocks = notebook_blocks(agenda(text))
    for nb in notebooks:
        mine = [minutes for _, minutes, block in rows if nb.name in NOTEBOOK_NAME.findall(block)]
        if len(mine) != 1:
            problems.append(f"{nb.name} has {len(mine)} rows in the schedule, not 1")
            continue
        core = parts_of_block(blocks.get(nb.name, [])).get("Core path")
        if core is not None and core[2] is not None and core[2] > mine[0]:
            problems.append(f"{nb.name}: {core[2]} minutes of core reading in a {mine[0]}-minute "
                            "block")
    return problems


def solutions_problems(text: str, nb: Notebook, checkers: set[str]) -> list[str]:
    """The solutions key for ``nb`` has exactly the notebook's exercises (number and bold
    title), each says whether it is checked automatically and how long it takes, and it names
    the notebook's checkers, each one defined in ``exercises.py``."""
    block = notebook_blocks(solutions(text)).get(nb.name)
    if block is None:
        return [f"{nb.name}: the solutions key has no subsection"]
    keyed: dict[int, str] = {}
    problems = []
    for s in block:
        match = EXERCISE_HEADING.match(s.title) if s.level == 4 else None
        if s.level == 4 and match is None:
            problems.append(f"heading {s.title!r} is not 'Exercise N. **title**'")
        if match is None:
            continue
        number, title = int(match.group(1)), " ".join(match.group(2).split())
        keyed[number] = title
        body = "\n".join(s.lines)
        auto = re.search(r"^- Checked automatically: (yes|no)\b", body, re.MULTILINE)
        if auto is None:
            problems.append(f"exercise {number}: no '- Checked automatically: yes/no' line")
        elif (auto.group(1) == "yes") != ("(checked automatically)" in title.lower()):
            problems.append(f"exercise {number}: 'Checked automatically: {auto.group(1)}' "
                            f"against the title {title!r}")
        if not re.search(r"^- Time: ", body, re.MULTILINE):
            problems.append(f"exercise {number}: no '- Time:' line")
    for number, title in sorted(nb.exercises.items()):
        if number not in keyed:
            problems.append(f"exercise {number} ({title!r}) is not in the solutions key")
        elif keyed[number] != title:
            problems.append(f"exercise {number} is {title!r} in the notebook, "
                            f"{keyed[number]!r} in the key")
    problems += [f"keys exercise {n} ({t!r}), which the notebook does not have"
                 for n, t in sorted(keyed.items()) if n not in nb.exercises]
    named = {name for s in block for line in s.lines for name in CHECKER_NAME.findall(line)}
    problems += [f"does not name {c}, which the notebook calls"
                 for c in sorted(nb.checkers - named)]
    problems += [f"names {c}, which the notebook does not call"
                 for c in sorted(named - nb.checkers)]
    problems += [f"{c} is not defined in exercises.py" for c in sorted(named - checkers)]
    return [f"{nb.name}: {p}" for p in problems]


def failure_problems(text: str, source: str) -> list[str]:
    """Every failure quotes key words, and each quoted phrase occurs in the code, the Makefile
    or a notebook's code cells."""
    part = failures(text)
    if not part:
        return ["the guide has no 'Common failures' section"]
    problems = []
    for s in part[1:]:
        keys = [line for line in s.lines if line.startswith("Key words:")]
        if s.title != "Not failures" and not keys:
            problems.append(f"{s.title!r}: no 'Key words:' line")
        for line in keys:
            problems += [f"{s.title!r}: {phrase!r} occurs nowhere in the code"
                         for phrase in CODE_SPAN.findall(line) if phrase not in source]
    return problems


def prose_lines(text: str) -> list[str]:
    """The guide's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def quoted_heading_problems(text: str, notebooks: list[Notebook]) -> list[str]:
    """Anywhere in the guide, a heading quoted in backticks or double quotes is a heading of
    some notebook (the agenda's are checked notebook by notebook above)."""
    headings = {h for nb in notebooks for h in nb.words}
    quoted = {q for line in prose_lines(text)
              for q in [*CODE_SPAN.findall(line), *DOUBLE_QUOTED.findall(line)]
              if QUOTED_HEADING.match(q)}
    return [f"quotes {q!r}, which is no notebook's heading" for q in sorted(quoted - headings)]


def reference_problems(text: str) -> list[str]:
    """Every ``results/NAME.json`` the guide names exists; every relative link resolves; the
    guide links the glossary."""
    problems = [f"names results/{name}, which does not exist"
                for name in sorted(set(RESULTS_FILE.findall(text)))
                if not (ROOT / "results" / name).is_file()]
    for target in LINK.findall(text):
        if not target.startswith(("http://", "https://", "#")):
            if not (GUIDE.parent / target.split("#")[0]).exists():
                problems.append(f"link {target!r} does not resolve")
    if "(GLOSSARY.md)" not in text:
        problems.append("the guide does not link GLOSSARY.md")
    return problems


# --------------------------------------------------------------------------------------------
# The guide against the course
# --------------------------------------------------------------------------------------------


def all_notebooks() -> list[Notebook]:
    return [read_notebook(path) for path in NOTEBOOKS]


def test_the_course_has_notebooks_with_exercises() -> None:
    assert NOTEBOOKS, "no notebooks found"
    for nb in all_notebooks():
        assert nb.exercises, f"{nb.name}: no numbered '**title**' items under '## Exercises'"


def test_every_notebook_has_a_section_in_the_agenda_and_in_the_solutions_key() -> None:
    assert missing_notebooks(guide_text(), all_notebooks()) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_agenda_quotes_and_places_the_notebooks_real_sections(path: Path) -> None:
    assert agenda_problems(guide_text(), read_notebook(path)) == []


def test_the_schedule_fits_three_hours() -> None:
    rows = schedule_rows(guide_text())
    assert rows, "no schedule table"
    assert sum(minutes for _, minutes, _ in rows) <= WORKSHOP_MINUTES
    assert schedule_problems(guide_text(), all_notebooks()) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_solutions_key_has_every_exercise(path: Path) -> None:
    assert solutions_problems(guide_text(), read_notebook(path), defined_checkers()) == []


def test_the_quoted_error_messages_are_the_codes() -> None:
    assert failure_problems(guide_text(), source_text()) == []


def test_every_heading_the_guide_quotes_is_a_notebooks() -> None:
    assert quoted_heading_problems(guide_text(), all_notebooks()) == []


def test_the_files_and_links_the_guide_names_exist() -> None:
    assert reference_problems(guide_text()) == []


# --------------------------------------------------------------------------------------------
# The checks fail on a broken guide
# --------------------------------------------------------------------------------------------


def first_core_heading(text: str, nb: Notebook) -> str:
    return parts_of_block(notebook_blocks(agenda(text))[nb.name])["Core path"][3][1]


def test_a_renamed_section_is_caught() -> None:
    nb = read_notebook(NOTEBOOKS[0])
    heading = first_core_heading(guide_text(), nb)
    broken = guide_text().replace(f"`{heading}`", f"`{heading} (renamed)`", 1)
    problems = agenda_problems(broken, nb)
    assert any("not a heading" in p for p in problems)
    assert any("does not place" in p for p in problems)


def test_a_renamed_section_quoted_in_the_solutions_key_is_caught() -> None:
    broken = guide_text().replace('"### What was tuned (optional)"',
                                  '"### What we tuned (optional)"')
    assert broken != guide_text()
    assert quoted_heading_problems(broken, all_notebooks()) != []


def test_a_notebook_section_the_agenda_does_not_place_is_caught() -> None:
    nb = read_notebook(NOTEBOOKS[0])
    extra = Notebook(nb.name, [*nb.headings, "## 99. A new section"],
                     {**nb.words, "## 99. A new section": 0},
                     {**nb.code_cells, "## 99. A new section": 0}, nb.exercises, nb.checkers)
    assert any("## 99. A new section" in p for p in agenda_problems(guide_text(), extra))


def test_stale_word_counts_are_caught() -> None:
    nb = read_notebook(NOTEBOOKS[0])
    doubled = Notebook(nb.name, nb.headings, {h: 2 * w + WORD_SLACK for h, w in nb.words.items()},
                       nb.code_cells, nb.exercises, nb.checkers)
    assert any("words" in p for p in agenda_problems(guide_text(), doubled))


def test_a_schedule_over_three_hours_is_caught() -> None:
    rows = schedule_rows(guide_text())
    start, minutes, block = rows[-1]
    old = f"| {start // 60}:{start % 60:02d} | {minutes} |"
    assert old in guide_text()
    broken = guide_text().replace(old, f"| {start // 60}:{start % 60:02d} | {minutes + 60} |")
    assert any("more than" in p for p in schedule_problems(broken, all_notebooks()))


def test_a_missing_notebook_section_is_caught() -> None:
    name = NOTEBOOKS[-1].name
    broken = guide_text().replace(f"### {name}", f"### {name.replace('.ipynb', '.txt')}")
    problems = missing_notebooks(broken, all_notebooks())
    assert any(f"no '### {name}' subsection" in p for p in problems)


def test_an_exercise_added_or_renamed_in_a_notebook_is_caught() -> None:
    nb = read_notebook(NOTEBOOKS[0])
    number = max(nb.exercises)
    added = Notebook(nb.name, nb.headings, nb.words, nb.code_cells,
                     {**nb.exercises, number + 1: "A new exercise."}, nb.checkers)
    renamed = Notebook(nb.name, nb.headings, nb.words, nb.code_cells,
                       {**nb.exercises, number: "Another title."}, nb.checkers)
    assert any("not in the solutions key" in p
               for p in solutions_problems(guide_text(), added, defined_checkers()))
    assert any("in the notebook" in p
               for p in solutions_problems(guide_text(), renamed, defined_checkers()))


def test_a_renamed_checker_is_caught() -> None:
    nb = read_notebook(NOTEBOOKS[0])
    assert nb.checkers, f"{nb.name} calls no course.check_* function"
    assert solutions_problems(guide_text(), nb, set()) != []


def test_a_reworded_message_is_caught() -> None:
    assert failure_problems(guide_text(), "") != []
