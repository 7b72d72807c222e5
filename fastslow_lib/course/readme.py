"""The README's generated blocks: numbers a reader sees on the front page, filled from results/.

A block sits between two HTML comments that Markdown does not show::

    <!-- begin generated: claims (make readme) -->
    ...
    <!-- end generated: claims -->

``make readme`` (``python -m fastslow_lib.course.readme``) rewrites every block from
``results/summary.json``; ``make course`` runs it at the end, and a unit test fails when a block
is stale, so the README's claims rows are always those of ``results/summary.md``.

Taught in notebooks/00_data.ipynb (the results file); every notebook records into it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from fastslow_lib.core.paths import repo_root
from fastslow_lib.course.release import RELEASES, manifest
from fastslow_lib.course.report import claims_rows, claims_table
from fastslow_lib.course.results import load_summary

__all__ = ["BLOCKS", "fill_blocks", "generated_blocks", "update_readme"]

_BEGIN = "<!-- begin generated: {name} (make readme) -->"
_END = "<!-- end generated: {name} -->"


def _claims(summary: Mapping, results_dir: Path) -> str:
    return claims_table(summary, results_dir)


def _probe(values: Mapping, prefix: str) -> str:
    return (f"{values[prefix + 'probe']:.1f} ({values[prefix + 'probe_colour']:.1f} / "
            f"{values[prefix + 'probe_size']:.1f} / {values[prefix + 'probe_position']:.1f})")


def _fast(summary: Mapping, _: Path) -> str:
    f, ceiling = summary["01_fast"], summary["00_data"]["oracle_R@1"]
    return "\n".join([
        "| text -> image R@1 / R@5 / R@10 | image -> text R@1 | probe (colour / size / position) "
        "| caption-twin cosine (colour swap) | training |",
        "|---|---|---|---|---|",
        f"| {f['test_R@1']:.1f} / {f['test_R@5']:.1f} / {f['test_R@10']:.1f} (ceiling "
        f"{ceiling:.1f}) | {f['test_i2t_R@1']:.1f} | {_probe(f, '')} | "
        f"{f['twin_cosine_text_colour']:.3f} | {f['steps']} steps, {f['train_seconds']:.0f} s |",
    ])


def _slow(summary: Mapping, _: Path) -> str:
    s = summary["02_slow"]
    rows = ["| | R@1 / R@5 / R@10 | probe (colour / size / position) "
            "| small objects, 100-image gallery R@1 |", "|---|---|---|---|"]
    for name, key, probe in (("Fast", "fast_same_queries_", "fast_"), ("Slow", "slow_test_",
                                                                        "slow_")):
        rows.append(f"| {name} | {s[key + 'R@1']:.1f} / {s[key + 'R@5']:.1f} / "
                    f"{s[key + 'R@10']:.1f} | {_probe(s, probe)} | "
                    f"{s[probe + 'small100_R@1']:.1f} |")
    gap = s["slow_test_R@1"] - s["fast_same_queries_R@1"]
    rows += ["", f"Slow - Fast: {gap:+.1f} points of R@1 on these queries; Slow trained in "
             f"{s['train_seconds']:.0f} s ({s['steps']} steps) and scored them at "
             f"{s['pairs_per_s']:,} pairs/s."]
    return "\n".join(rows)


#: What each notebook builds (the course map's second column).
NOTEBOOKS: dict[str, str] = {
    "00_data": "the embedded world, tokenizer, retrieval metrics",
    "01_fast": "dual encoder, InfoNCE, training (live demonstration and release model), the "
               "probe, FAISS search",
    "02_slow": "cross-attention captioner, gradual upsampling, bidirectional loss, batched "
               "scoring, ablations, grounding",
    "03_distill": "distilling Slow into Fast: look-alike groups, cached teacher scores, soft "
                  "targets, the student, a sweep",
    "04_rerank": "Fast top-K re-ranked by Slow; Recall@1 against K; timing cells; speed-up as "
                 "the gallery grows to 10^4; Pareto plot",
    "05_video": "clips of the embedded world; video Fast (mean pooling, temporal transformer) "
                "and Slow (space-time cross-attention); the order probe; re-ranking clips",
    "06_demo_and_scale": "search demo and widget; FAISS flat / IVF / HNSW / IVF-PQ at 10^5; "
                         "sharding; costs projected to 10^9; real-data loaders on fixtures; "
                         "`torchrun` training",
}


def _course(summary: Mapping, results_dir: Path) -> str:
    times = json.loads((results_dir / "course_times.json").read_text())
    rows = claims_rows(summary, results_dir)
    lines = ["| notebook | builds | CPU time, release models present (2 cores) | claims met |",
             "|---|---|---|---|"]
    for name, builds in NOTEBOOKS.items():
        mine = [r for r in rows if r["notebook"] == name]
        met = (f"{sum(r['met'] is True for r in mine)} of {len(mine)}" if mine else "(none)")
        seconds = times.get(f"{name}.ipynb")
        shown = f"{seconds:.0f} s" if seconds is not None else "not run yet"
        lines.append(f"| [{name}](notebooks/{name}.ipynb) | {builds} | {shown} | {met} |")
    machine = summary.get("course", {}).get("machine", "this machine")
    lines += ["", f"Whole course (`make course`, every notebook top to bottom with the live "
              f"demonstrations trained): **{times['total'] / 60:.1f} minutes** on {machine} "
              "(the course's target: 8 minutes, at most 12)."]
    return "\n".join(lines)


def _release(_: Mapping, __: Path) -> str:
    data = manifest(repo_root() / "data" / "release")
    models = data["models"]
    lines = ["| release model | what | budget | training | validation | weights |",
             "|---|---|---|---|---|---|"]
    total = 0.0
    for name, spec in RELEASES.items():
        e = models.get(name)
        if e is None:
            lines.append(f"| `{name}` | {spec.what} | not built yet | | | |")
            continue
        b = e["budget"]
        minutes = e["training_seconds"] / 60 + (e.get("teacher_seconds") or 0) / 60
        total += minutes
        size = (repo_root() / "data" / "release" / name / "model.safetensors").stat().st_size
        val = ", ".join(f"{k} {v:g}" for k, v in e["validation"].items())
        lines.append(f"| `{name}` | {spec.what} | {b['epochs']} epochs x {b['batch_size']} "
                     f"({b['steps']:,} steps) | {minutes:.1f} min | {val} | {size / 1e6:.1f} MB |")
    machines = sorted({e["machine"] for e in models.values()})
    lines += ["", f"`make reproduce` from scratch: **{total:.0f} minutes** of training on "
              f"{'; '.join(machines) or 'no machine yet'}; all weights together "
              f"{data.get('total_weight_bytes', 0) / 1e6:.1f} MB."]
    return "\n".join(lines)


#: Block name -> how to make its text from the summary and the results folder.
BLOCKS: dict[str, Callable[[Mapping, Path], str]] = {"claims": _claims, "fast": _fast,
                                                      "slow": _slow, "course": _course,
                                                      "release": _release}


def generated_blocks(results_dir: str | Path | None = None) -> dict[str, str]:
    """The text of every block, made from ``results_dir`` (default: the repository's)."""
    folder = Path(results_dir) if results_dir is not None else repo_root() / "results"
    summary = load_summary(folder)
    return {name: make(summary, folder).strip() for name, make in BLOCKS.items()}


def fill_blocks(text: str, blocks: Mapping[str, str]) -> str:
    """``text`` with each named block's body replaced; a missing marker is a clear error."""
    for name, body in blocks.items():
        begin, end = _BEGIN.format(name=name), _END.format(name=name)
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        if len(pattern.findall(text)) != 1:
            raise ValueError(f"the README needs exactly one block {begin!r} ... {end!r} for "
                             f"{name!r}")
        filled = f"{begin}\n{body}\n{end}"
        text = pattern.sub(lambda _match, filled=filled: filled, text)
    return text


def update_readme(readme: str | Path | None = None, results_dir: str | Path | None = None,
                  *, check: bool = False) -> bool:
    """Fill the README's blocks from the results; return whether the README was up to date.

    With ``check=True`` nothing is written.
    """
    path = Path(readme) if readme is not None else repo_root() / "README.md"
    text = path.read_text()
    new = fill_blocks(text, generated_blocks(results_dir))
    if new != text and not check:
        path.write_text(new)
    return new == text


def main(argv: list[str] | None = None) -> int:
    """``python -m fastslow_lib.course.readme [--check]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    args = parser.parse_args(argv)
    fresh = update_readme(check=args.check)
    if args.check and not fresh:
        print("README.md's generated blocks are stale: run `make readme`")
        return 1
    print("README.md is up to date" if fresh else "README.md's generated blocks rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
