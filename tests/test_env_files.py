"""requirements.txt and environment.yml must list the same exact pins, in the same order."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
ENVIRONMENT = ROOT / "environment.yml"

# name==version, optionally followed by "; environment markers"
EXACT_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s=;,<>!~]+)\s*(;.+)?$"
)


def requirement_lines(text: str) -> list[str]:
    """Requirement lines of a requirements.txt: no blank lines, no (inline) comments."""
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def conda_pip_lines(text: str) -> list[str]:
    """Items of the ``- pip:`` block of an environment.yml (tiny parser, no PyYAML)."""
    items: list[str] | None = None
    block_indent = -1
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        if items is None:
            if re.fullmatch(r"-\s*pip\s*:", stripped):
                items, block_indent = [], indent
            continue
        if indent <= block_indent:
            break  # the pip: block has ended
        if not stripped.startswith("- "):
            raise ValueError(f"unexpected line in the pip: block: {raw!r}")
        item = stripped[2:].strip()
        if len(item) >= 2 and item[0] == item[-1] and item[0] in "'\"":
            item = item[1:-1]
        items.append(item)
    if items is None:
        raise ValueError("environment.yml has no '- pip:' block")
    return items


def diff_lists(expected: list[str], actual: list[str], a_name: str, b_name: str) -> str:
    """A unified diff of two lists of lines; empty string when they are identical."""
    return "\n".join(
        difflib.unified_diff(expected, actual, fromfile=a_name, tofile=b_name, lineterm="")
    )


@pytest.fixture(scope="module")
def requirements() -> list[str]:
    return requirement_lines(REQUIREMENTS.read_text())


@pytest.fixture(scope="module")
def conda_pip() -> list[str]:
    return conda_pip_lines(ENVIRONMENT.read_text())


def test_environment_yml_matches_requirements(requirements: list[str], conda_pip: list[str]):
    assert conda_pip[-1:] == ["-e ."], "environment.yml's pip: block must end with '-e .'"
    diff = diff_lists(requirements, conda_pip[:-1], "requirements.txt", "environment.yml pip:")
    assert not diff, f"environment.yml's pip: block differs from requirements.txt:\n{diff}"


def test_environment_yml_basics():
    text = ENVIRONMENT.read_text()
    assert re.search(r"^name:\s*fastslow\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*-\s*conda-forge\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.MULTILINE)


def test_pyyaml_agrees_with_tiny_parser(conda_pip: list[str]):
    yaml = pytest.importorskip("yaml")  # only installed transitively; the tiny parser is the test
    env = yaml.safe_load(ENVIRONMENT.read_text())
    pip_blocks = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_blocks == [conda_pip]


def test_every_requirement_is_an_exact_pin(requirements: list[str]):
    loose = [line for line in requirements if not EXACT_PIN.match(line)]
    assert not loose, f"requirements without an exact '==' pin: {loose}"


def test_torch_pins(requirements: list[str]):
    pins = {m["name"].lower(): m["version"] for m in map(EXACT_PIN.match, requirements) if m}
    assert pins.get("torch") == "2.14.1"
    assert pins.get("torchvision") == "0.29.1"


# The checks above must be able to fail: feed them hand-made bad inputs.


def test_diff_reports_differences():
    base = ["torch==2.14.1", "numpy==2.4.6", "tqdm==4.70.1"]
    assert diff_lists(base, list(base), "a", "b") == ""
    changed = diff_lists(base, ["torch==2.14.0", "numpy==2.4.6", "tqdm==4.70.1"], "a", "b")
    assert "-torch==2.14.1" in changed and "+torch==2.14.0" in changed
    assert "-tqdm==4.70.1" in diff_lists(base, base[:2], "a", "b")  # missing line
    assert diff_lists(base, base[::-1], "a", "b") != ""  # order matters


def test_parsers_on_hand_made_files():
    req = "# comment\n\ntorch==2.14.1  # inline comment\nfoo==1; sys_platform == 'linux'\n"
    assert requirement_lines(req) == ["torch==2.14.1", "foo==1; sys_platform == 'linux'"]
    env = (
        "name: x\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
        '      # a comment\n      - torch==2.14.1\n      - "-e ."\nprefix: /tmp\n'
    )
    assert conda_pip_lines(env) == ["torch==2.14.1", "-e ."]
    with pytest.raises(ValueError, match="no '- pip:' block"):
        conda_pip_lines("name: x\ndependencies:\n  - pip\n")


@pytest.mark.parametrize("line", ["torch", "torch>=2.14", "torch~=2.14.1", "torch==2.*,<3"])
def test_exact_pin_rejects_loose_specs(line: str):
    assert not EXACT_PIN.match(line)
