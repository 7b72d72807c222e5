"""The README's generated blocks: numbers a reader sees on the front page, filled from results/.

A block sits between two HTML comments that Markdown does not show::

    <!-- begin generated: claims (make readme) -->
    ...
    <!-- end generated: claims -->

``make readme`` (``python -m fastslow_course.readme``) rewrites every block from
``results/summary.json``; ``make course`` runs it at the end, and a unit test fails when a block
is stale, so the README's claims rows are always those of ``results/summary.md``.

Each block's layout is a jinja2 template, ``templates/readme/<block>.md.j2`` beside this module;
the function of the same name in :data:`BLOCKS` gathers its numbers.

Taught in notebooks/00_data.ipynb (the results file); every notebook records into it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from fastslow_course.caption_detail import SIGNALS, regime_gains
from fastslow_course.kept_intervals import paired_difference_interval
from fastslow_course.release import MANIFEST_NAME, manifest
from fastslow_course.report import RULE, claims_rows, claims_table
from fastslow_course.results import load_outcomes, load_summary
from fastslow_lib.core.checkpoint import WEIGHTS_NAME
from fastslow_lib.core.intervals import hits_at, proportion_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.registry import REGISTRY

__all__ = ["BLOCKS", "fill_blocks", "generated_blocks", "update_readme"]

_BEGIN = "<!-- begin generated: {name} (make readme) -->"
_END = "<!-- end generated: {name} -->"


#: One template per block, ``templates/readme/<block>.md.j2``: the layout; the functions below
#: gather the numbers. ``f`` formats a value with a format spec (``{{ x | f(',.1f') }}``).
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "readme"),
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False,
)
TEMPLATES.filters["f"] = format


def _render(block: str, **context: Any) -> str:
    """The text of ``block`` from its template; ``probe`` is there for every template."""
    return TEMPLATES.get_template(f"{block}.md.j2").render(probe=_probe, **context)


def _claims(summary: Mapping, results_dir: Path) -> str:
    return _render("claims", table=claims_table(summary, results_dir), rule=RULE)


def _json(results_dir: Path, name: str) -> dict:
    return json.loads((results_dir / name).read_text())


def _world(summary: Mapping, results_dir: Path) -> str:
    from fastslow_lib.config.presets import get_preset
    from fastslow_lib.config.world import OBJECT_COUNTS

    d, w = summary["00_data"], get_preset(summary["00_data"]["preset"]).world
    n_objects = [n for n, p in zip(OBJECT_COUNTS, w.n_objects_probs, strict=True) if p > 0]
    return _render("world", d=d, w=w, n_objects=n_objects,
                   b=_json(results_dir, "bench_world.json"))


def _index(_: Mapping, results_dir: Path) -> str:
    b = _json(results_dir, "bench_index.json")
    n = max(b["results"], key=int)
    rows = [(kind, r["index"].split("(", 1)[1].split(")")[0] if "(" in r["index"] else "", r)
            for kind, r in b["results"][n].items()]
    return _render("index", b=b, n=int(n), rows=rows)


def _gpu(_: Mapping, results_dir: Path) -> str:
    gpu_slow = _json(results_dir, "bench_slow_gpu.json")
    qb = {q: _json(results_dir, f"bench_rerank_gpu_qb{q}.json") for q in (16, 200)}
    cpu_by_n = {r["N"]: r for r in _json(results_dir, "bench_rerank.json")["rows"]}
    rows = [(r16, r200, cpu_by_n.get(r200["N"]))
            for r16, r200 in zip(qb[16]["rows"], qb[200]["rows"], strict=True)]
    return _render("gpu", cpu_slow=_json(results_dir, "bench_slow.json"), gpu_slow=gpu_slow,
                   card=gpu_slow["device"].split("(", 1)[1].rstrip(")"),
                   train=_json(results_dir, "bench_train_gpu.json")["rows"], qb16=qb[16],
                   rows=rows)


def _probe(values: Mapping, prefix: str) -> str:
    return (f"{values[prefix + 'probe']:.1f} ({values[prefix + 'probe_colour']:.1f} / "
            f"{values[prefix + 'probe_size']:.1f} / {values[prefix + 'probe_position']:.1f})")


def _fast(summary: Mapping, _: Path) -> str:
    return _render("fast", fast=summary["01_fast"], ceiling=summary["00_data"]["oracle_R@1"])


def _slow(summary: Mapping, _: Path) -> str:
    return _render("slow", s=summary["02_slow"])


def _ci(outcomes: Mapping, section: str, name: str, k: int = 1) -> str:
    """``83.5 [77.6, 88.4]``: a recall (ranks) or probe (outcomes in [0, 1]) with its interval."""
    values = np.asarray(outcomes[section][name])
    if name.endswith("ranks"):
        return str(proportion_interval(hits_at(values.astype(np.int64), k)))
    return str(proportion_interval(values))


def _paired(outcomes: Mapping, section: str, a: str, b: str) -> str:
    hits = [hits_at(np.asarray(outcomes[section][n], dtype=np.int64), 1) for n in (a, b)]
    return paired_difference_interval(*hits).signed()


def _distill(summary: Mapping, results_dir: Path) -> str:
    o = load_outcomes(results_dir)
    warm_path = results_dir / "warm_student.json"
    warm = json.loads(warm_path.read_text()) if warm_path.is_file() else None
    detail_path = results_dir / "caption_detail.json"
    detail = json.loads(detail_path.read_text()) if detail_path.is_file() else None
    return _render("distill", d=summary["03_distill"], n=len(o["03_distill"]["fast_test_ranks"]),
                   ci=partial(_ci, o), paired=partial(_paired, o), warm=warm,
                   warm_rows=_warm_student(warm) if warm else [],
                   regimes=_regime_rows(detail) if detail else [])


def _regime_rows(record: Mapping) -> list[dict[str, Any]]:
    """One row per world and teacher's student of ``results/caption_detail.json``: the world's
    figures and the student's paired gains on both protocols."""
    worlds = {w["caption_detail"]: w for w in record["worlds"]}
    by_protocol = {p: {(g["detail"], g["student"]): g for g in regime_gains(record, p)}
                   for p in ("1k", "5k")}
    rows = []
    for key in by_protocol["1k"]:
        detail, student = key
        w = worlds[detail]
        pair = [by_protocol[p].get(key) for p in ("1k", "5k")]

        def both(field: str, pair: list = pair) -> str:
            return " / ".join(g[field].signed() if g is not None and g[field] is not None
                              else "-" for g in pair)

        rows.append({"detail": detail, "signal": SIGNALS[student],
                     "one": f"{w['test_1k']['true_of_one_image']:.1f} / "
                            f"{w['test_5k']['true_of_one_image']:.1f}",
                     "fn": w["training_batches"]["per_caption"],
                     "labelled": both("labelled"), "consistent": both("consistent"),
                     "share": both("teacher_share")})
    return rows


#: The arms of ``scripts/trial_warm_student.py``, as the README names them.
WARM_ARMS = {"continued": "InfoNCE alone", "continued_groups": "look-alike batches, no teacher",
             "continued_a": "signal (a)", "continued_a_soft": "signal (a), soft targets",
             "continued_hard": "hard negatives, no teacher", "continued_b": "signal (b)",
             "continued_b_soft": "signal (b), soft targets"}


def _warm_student(warm: Mapping) -> list[tuple[str, str, str]]:
    """The warm-start rows: each arm's test R@1 and its gain over InfoNCE alone, per seed."""
    seeds, res = warm["seeds"], warm["results"]
    hits = {k: hits_at(np.asarray(r["test_ranks"], dtype=np.int64), 1) for k, r in res.items()}
    rows = []
    for arm, label in WARM_ARMS.items():
        if f"{arm}_seed{seeds[0]}" not in res:
            continue
        r1 = " / ".join(str(proportion_interval(hits[f"{arm}_seed{sd}"])) for sd in seeds)
        gain = "" if arm == "continued" else " / ".join(
            paired_difference_interval(hits[f"{arm}_seed{sd}"], hits[f"continued_seed{sd}"])
            .signed() for sd in seeds)
        rows.append((label, r1, gain))
    return rows


def _rerank(summary: Mapping, results_dir: Path) -> str:
    r, o = summary["04_rerank"], load_outcomes(results_dir)
    return _render("rerank", r=r, n_all=r["Fast_miss_at_10_all_queries"]["n"],
                   ci=partial(_ci, o), paired=partial(_paired, o))


def _video(summary: Mapping, results_dir: Path) -> str:
    v, o = summary["05_video"], load_outcomes(results_dir)
    names = [k[: -len("_R@1")] for k in v if k.endswith("_R@1") and not k.startswith("slow_")
             and not k.startswith("rerank")]
    rows = [(n, _ci(o, "05_video", f"{n}_probe") if f"{n}_probe" in o.get("05_video", {})
             else f"{v[n + '_probe']:.1f}") for n in names]
    return _render("video", v=v, rows=rows,
                   by_k=sorted(v["rerank_R@1_by_K"].items(), key=lambda kv: int(kv[0])),
                   speedup_k=v.get("speedup_K", v.get("smallest_K_within_1_of_slow")))


def _scale(summary: Mapping, _: Path) -> str:
    s = summary["06_demo_and_scale"]
    return _render("scale", s=s, c=s["measured_costs"], p=s["projected_1e9"], tib=2.0 ** 40)


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
                 "the gallery grows to 10^4; the 5K protocol (near-duplicates); Pareto plots",
    "05_video": "clips of the embedded world; video Fast (mean pooling, temporal transformer) "
                "and Slow (space-time cross-attention); the order probe; re-ranking clips",
    "06_demo_and_scale": "search demo and widget; FAISS flat / IVF / HNSW / IVF-PQ at 10^5; "
                         "sharding; costs projected to 10^9; real-data loaders on fixtures; "
                         "`torchrun` training",
}


def _course(summary: Mapping, results_dir: Path) -> str:
    times = json.loads((results_dir / "course_times.json").read_text())
    claims = claims_rows(summary, results_dir)
    rows = []
    for name, builds in NOTEBOOKS.items():
        mine = [r for r in claims if r["notebook"] == name]
        met = (f"{sum(r['met'] == 'met' for r in mine)} of {len(mine)}" if mine else "(none)")
        rows.append((name, builds, met, times.get(f"{name}.ipynb")))
    return _render("course", rows=rows, times=times,
                   machine=summary.get("course", {}).get("machine", "this machine"))


def _release(_: Mapping, folder: Path) -> str:
    release = repo_root() / "data" / "release"
    data = manifest(release)
    models = data["models"]
    rows, total = [], 0.0
    for name, spec in REGISTRY.items():
        e = models.get(name)
        if e is None:
            rows.append((name, spec.what, None))
            continue
        minutes = e["training_seconds"] / 60 + (e.get("teacher_seconds") or 0) / 60
        total += minutes
        rows.append((name, spec.what, {
            "budget": e["budget"], "minutes": minutes,
            "validation": ", ".join(f"{k} {v:g}" for k, v in e["validation"].items()),
            "size": (release / name / "model.safetensors").stat().st_size,
            "dtype": e.get("stored_dtype")}))
    return _render("release", rows=rows, total=total, worlds=_caption_worlds(release),
                   machines=sorted({e["machine"] for e in models.values()}),
                   weight_bytes=data.get("total_weight_bytes", 0),
                   checks=_reproduce_checks(folder))


def _caption_worlds(release: Path) -> list[dict]:
    """One row per caption-detail world's release folder (``captions-NN``)."""
    out = []
    for folder in sorted(release.glob("captions-*")):
        if not (folder / MANIFEST_NAME).is_file():
            continue
        models = manifest(folder)["models"]
        out.append({"folder": folder.name, "models": [f"`{n}`" for n in models],
                    "minutes": sum(e["training_seconds"] + (e.get("teacher_seconds") or 0)
                                   for e in models.values()) / 60,
                    "bytes": sum((folder / n / WEIGHTS_NAME).stat().st_size for n in models),
                    "dtypes": sorted({e["stored_dtype"] for e in models.values()
                                      if e.get("stored_dtype")})})
    return out


def _reproduce_checks(folder: Path) -> list[str]:
    """Lines for ``results/reproduce_check.json`` (``scripts/reproduce.py --check``)."""
    path = folder / "reproduce_check.json"
    if not path.is_file():
        return ["", "No model has been retrained against its committed figures yet "
                "(`python scripts/reproduce.py --check NAME`)."]
    out = ["", "Retrained from scratch beside the committed models "
           "(`python scripts/reproduce.py --check NAME`; tolerance: inside the 95% interval of "
           "the manifest's validation R@1, or, where `--seeds` measured the recipe's "
           "seed-to-seed spread, inside the 95% prediction interval of its runs):", ""]
    released = manifest(repo_root() / "data" / "release")["models"]
    for c in json.loads(path.read_text())["checks"]:
        now = released.get(c["model"], {}).get("sha256", {}).get(WEIGHTS_NAME)
        superseded = c.get("committed_sha256") is not None and now is not None \
            and c["committed_sha256"] != now
        figures = "; ".join(f"{k} committed {v['committed']:g}, reproduced {v['reproduced']:g} "
                            f"(interval [{v['interval'][0]:g}, {v['interval'][1]:g}])"
                            for k, v in c["checks"].items())
        runs = c.get("seed_runs", {})
        if runs:
            figures += "; the same recipe at seeds " + ", ".join(
                f"{seed}: " + "/".join(f"{v:g}" for v in run.values())
                for seed, run in runs.items())
        spread = [(k, v) for k, v in c["checks"].items() if "seed_interval" in v]
        if spread:
            figures += "; prediction interval of the recipe's runs " + ", ".join(
                f"[{v['seed_interval'][0]:g}, {v['seed_interval'][1]:g}] (sampling interval: "
                f"{'within' if v['within_sampling'] else 'outside'})" for _, v in spread)
        out.append(f"- `{c['model']}` on {c['machine']}, {c['date']}: {figures}: "
                   f"**{'within' if c['within'] else 'outside'}**; trained in "
                   f"{c['training_seconds'] / 60:.1f} min (committed: "
                   f"{c['committed_training_seconds'] / 60:.1f} min on {c['committed_machine']})"
                   + ("; checked against an earlier release of this model, since retrained: "
                      "not re-checked yet" if superseded else ""))
    return out


#: Block name -> how to make its text from the summary and the results folder.
BLOCKS: dict[str, Callable[[Mapping, Path], str]] = {
    "claims": _claims, "fast": _fast, "slow": _slow, "course": _course, "release": _release,
    "world": _world, "index": _index, "gpu": _gpu, "distill": _distill, "rerank": _rerank,
    "video": _video, "scale": _scale,
}


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
    """``python -m fastslow_course.readme [--check]``."""
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
