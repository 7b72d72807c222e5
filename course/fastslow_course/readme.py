"""The README's generated blocks: numbers a reader sees on the front page, filled from results/.

A block sits between two HTML comments that Markdown does not show::

    <!-- begin generated: claims (make readme) -->
    ...
    <!-- end generated: claims -->

``make readme`` (``python -m fastslow_course.readme``) rewrites every block from
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

import numpy as np

from fastslow_course.release import manifest
from fastslow_course.report import RULE, claims_rows, claims_table
from fastslow_course.results import load_outcomes, load_summary
from fastslow_lib.core.checkpoint import WEIGHTS_NAME
from fastslow_lib.core.intervals import hits_at, paired_difference_interval, proportion_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.registry import REGISTRY

__all__ = ["BLOCKS", "fill_blocks", "generated_blocks", "update_readme"]

_BEGIN = "<!-- begin generated: {name} (make readme) -->"
_END = "<!-- end generated: {name} -->"


def _claims(summary: Mapping, results_dir: Path) -> str:
    return f"{claims_table(summary, results_dir)}\n\n{RULE}"


def _json(results_dir: Path, name: str) -> dict:
    return json.loads((results_dir / name).read_text())


def _world(summary: Mapping, results_dir: Path) -> str:
    from fastslow_lib.config.presets import get_preset
    from fastslow_lib.config.world import OBJECT_COUNTS

    d, w = summary["00_data"], get_preset(summary["00_data"]["preset"]).world
    b = _json(results_dir, "bench_world.json")
    n_objects = [n for n, p in zip(OBJECT_COUNTS, w.n_objects_probs, strict=True) if p > 0]
    return "\n".join([
        f"- {w.image_size} x {w.image_size} RGB images of {min(n_objects)} to {max(n_objects)} "
        f"objects ({', '.join(w.shapes)}; {', '.join(w.colours)}; small and large, and tiny in "
        f"small-object scenes) on a {w.grid} x {w.grid} grid, each image with its **scene "
        "description**;",
        f"- **{w.captions_per_image} captions per image** from a grammar with varied wording: "
        "places (\"in the top left\"), orders (\"from left to right: ...\"), relations (\"a "
        "red circle is above a blue square\");",
        f"- Karpathy-style splits: `train` {d['train_images']:,} images, `val` {w.n_val:,}, "
        f"`test` {d['test_images']:,} images and {d['test_captions']:,} captions (the "
        f"`{d['preset']}` preset), plus a `small` split (small-object scenes only) and a "
        f"compositional `probe` ({d['probe_pairs']:,} pairs of twin images with one binding "
        "swapped);",
        f"- captions **identify their image**: the oracle Recall@1 ceiling is "
        f"{d['oracle_R@1']:.1f}% (from the scene descriptions; a test keeps it at 95% or more).",
        "",
        f"Generation is deterministic per seed, bit for bit. `benchmarks/bench_world.py` "
        f"(`results/bench_world.json`, {b['machine']}): the {b['n_train_images']:,}-image "
        f"training split is generated in {b['train_generation_s']:.1f} s, every split plus the "
        f"probe in {b['all_generation_s']:.1f} s; reading them back from the cache takes "
        f"{b['cache_read_s']:.1f} s.",
    ])


def _index(_: Mapping, results_dir: Path) -> str:
    b = _json(results_dir, "bench_index.json")
    n = max(b["results"], key=int)
    rows = ["| index | setting | build | bytes/vector | ms/query | speed-up vs flat "
            f"| R@{b['k']} vs flat |", "|---|---|---|---|---|---|---|"]
    for kind, r in b["results"][n].items():
        setting = r["index"].split("(", 1)[1].split(")")[0] if "(" in r["index"] else ""
        rows.append(f"| {kind} | {setting} | {r['build_s']:.0f} s | {r['bytes_per_vector']:.0f} "
                    f"| {r['median_latency_ms']:.2f} | {r['latency_speedup_vs_flat']:.0f}x | "
                    f"{r['recall_at_k']:.3f} |")
    rows += ["", f"N = {int(n):,} vectors, d = {b['dim']}, k = {b['k']}, {b['n_queries']:,} "
             f"queries; {b['machine']}, faiss {b['faiss_version']}. {b['data']}."]
    return "\n".join(rows)


def _gpu(_: Mapping, results_dir: Path) -> str:
    cpu_slow, gpu_slow = (_json(results_dir, "bench_slow.json"),
                          _json(results_dir, "bench_slow_gpu.json"))
    train = _json(results_dir, "bench_train_gpu.json")
    qb = {q: _json(results_dir, f"bench_rerank_gpu_qb{q}.json") for q in (16, 200)}
    cpu_rr = _json(results_dir, "bench_rerank.json")
    card = gpu_slow["device"].split("(", 1)[1].rstrip(")")
    t = train["rows"]
    rows = [f"Files: `results/bench_train_gpu.json`, `results/bench_slow_gpu.json`, "
            f"`results/bench_rerank_gpu_qb16.json`, `results/bench_rerank_gpu_qb200.json` "
            f"({gpu_slow['machine']}); the CPU columns are `results/bench_slow.json` and "
            f"`results/bench_rerank.json` ({cpu_slow['machine']}).", "",
            f"| | {cpu_slow['machine']} | {card} |", "|---|---|---|",
            f"| Slow batched scoring, pairs/s (`bench_slow.py`) | "
            f"{cpu_slow['rows']['batched']['pairs_per_s']:,.0f} ({cpu_slow['ratio']:.0f}x the "
            f"per-pair loop) | {gpu_slow['rows']['batched']['pairs_per_s']:,.0f} "
            f"({gpu_slow['ratio']:.0f}x the per-pair loop) |",
            f"| Fast training, {t['fast']['steps']} steps | | {t['fast']['seconds']:.1f} s "
            f"({t['fast']['steps_per_s']:.1f} steps/s) |",
            f"| Slow training, {t['slow']['steps']} steps | | {t['slow']['seconds']:.1f} s "
            f"({t['slow']['steps_per_s']:.1f} steps/s) |", "",
            f"Re-ranking, K = {qb[16]['rows'][0]['K']}, {qb[16]['queries']} queries "
            "(`--query-block` = queries per Slow call):", "",
            "| gallery N | Slow on everything, ms/query (CPU / GPU) | Fast + Slow(K), CPU | "
            "GPU, blocks of 16 | GPU, blocks of 200 | speed-up CPU / GPU (blocks of 200) "
            "| ideal N/K |", "|---|---|---|---|---|---|---|"]
    cpu_by_n = {r["N"]: r for r in cpu_rr["rows"]}
    for r16, r200 in zip(qb[16]["rows"], qb[200]["rows"], strict=True):
        c = cpu_by_n.get(r200["N"])
        cpu_all = f"{c['slow_all_ms_per_query']:,.0f}" if c else "-"
        cpu_fs = f"{c['fast_slow_ms_per_query']:.2f} ms" if c else "-"
        cpu_speed = f"{c['speedup']:,.0f}x" if c else "-"
        rows.append(f"| {r200['N']:,} | {cpu_all} / {r200['slow_all_ms_per_query']:,.1f} | "
                    f"{cpu_fs} | {r16['fast_slow_ms_per_query']:.2f} ms | "
                    f"{r200['fast_slow_ms_per_query']:.2f} ms | {cpu_speed} / "
                    f"{r200['speedup']:,.0f}x | {r200['ideal']:,.0f}x |")
    return "\n".join(rows)


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
            f"| held-out probe, {s['held_out_probe_pairs']:,} pairs per kind "
            "| small objects, 100-image gallery R@1 |", "|---|---|---|---|---|"]
    for name, key, probe in (("Fast", "fast_same_queries_", "fast_"), ("Slow", "slow_test_",
                                                                        "slow_")):
        rows.append(f"| {name} | {s[key + 'R@1']:.1f} / {s[key + 'R@5']:.1f} / "
                    f"{s[key + 'R@10']:.1f} | {_probe(s, probe)} | "
                    f"{_probe(s, probe + 'held_out_')} | {s[probe + 'small100_R@1']:.1f} |")
    gap = s["slow_test_R@1"] - s["fast_same_queries_R@1"]
    rows += ["", f"Slow - Fast: {gap:+.1f} points of R@1 on these queries; Slow trained in "
             f"{s['train_seconds']:.0f} s ({s['steps']} steps) and scored them at "
             f"{s['pairs_per_s']:,} pairs/s."]
    return "\n".join(rows)


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
    d, o = summary["03_distill"], load_outcomes(results_dir)
    rows = ["| | test R@1 [95% interval] | R@5 / R@10 | probe (colour / size / position) "
            "| held-out look-alike accuracy |", "|---|---|---|---|---|"]
    for name, key in (("Fast (release)", "fast"), ("distilled Fast (release)", "distilled")):
        rows.append(f"| {name} | {_ci(o, '03_distill', key + '_test_ranks')} | "
                    f"{d[key + '_R@5']:.1f} / {d[key + '_R@10']:.1f} | {_probe(d, key + '_')} "
                    f"| {d[key + '_look-alike acc']:.1f} |")
    n = len(o["03_distill"]["fast_test_ranks"])
    rows += ["", f"Distilled minus Fast, paired over the same {n:,} test queries: "
             f"{_paired(o, '03_distill', 'distilled_test_ranks', 'fast_test_ranks')} R@1. The "
             f"teacher picks a training caption's image among its look-alikes "
             f"{d['teacher_lookalike_acc_train']:.1f}% of the time, Fast "
             f"{d['fast_lookalike_acc_train']:.1f}%."]
    if (results_dir / "warm_student.json").is_file():
        rows += ["", *_warm_student(json.loads((results_dir / "warm_student.json").read_text()))]
    return "\n".join(rows)


#: The arms of ``scripts/trial_warm_student.py``, as the README names them.
WARM_ARMS = {"continued": "InfoNCE alone", "continued_groups": "look-alike batches, no teacher",
             "continued_a": "signal (a)", "continued_a_soft": "signal (a), soft targets",
             "continued_hard": "hard negatives, no teacher", "continued_b": "signal (b)",
             "continued_b_soft": "signal (b), soft targets"}


def _warm_student(warm: Mapping) -> list[str]:
    """The warm-start table: each arm's test R@1 and its gain over InfoNCE alone, per seed."""
    seeds, res = warm["seeds"], warm["results"]
    hits = {k: hits_at(np.asarray(r["test_ranks"], dtype=np.int64), 1) for k, r in res.items()}
    rows = [f"Added to the release Fast (`scripts/trial_warm_student.py`: {warm['epochs']} more "
            f"epochs at lr {warm['lr']:g}, InfoNCE on the true pairs in every arm; notebook 03): "
            "test R@1, and minus InfoNCE alone, paired, per seed "
            f"({' / '.join(map(str, seeds))}):", "",
            "| arm | test R@1 [95% interval] | minus InfoNCE alone |", "|---|---|---|"]
    for arm, label in WARM_ARMS.items():
        if f"{arm}_seed{seeds[0]}" not in res:
            continue
        r1 = " / ".join(str(proportion_interval(hits[f"{arm}_seed{sd}"])) for sd in seeds)
        gain = "" if arm == "continued" else " / ".join(
            paired_difference_interval(hits[f"{arm}_seed{sd}"], hits[f"continued_seed{sd}"])
            .signed() for sd in seeds)
        rows.append(f"| {label} | {r1} | {gain} |")
    return rows


def _rerank(summary: Mapping, results_dir: Path) -> str:
    r, o = summary["04_rerank"], load_outcomes(results_dir)
    n_all = r["Fast_miss_at_10_all_queries"]["n"]
    rows = ["| | R@1 alone | R@10 (the cap at K = 10) | + Slow(10) R@1 [95% interval] "
            f"| minus Slow on everything | at most lost, all {n_all:,} test queries "
            "| smallest K within 1 point: paired / bound / paired on all |",
            "|---|---|---|---|---|---|---|"]
    for name in ("Fast", "distilled_Fast"):
        ranks, m = f"{name}_plus_slow10_ranks", r[f"{name}_miss_at_10_all_queries"]
        rows.append(f"| {name.replace('_', ' ')} | {r[name + '_R@1']:.1f} | "
                    f"{r[name + '_R@10']:.1f} | {_ci(o, '04_rerank', ranks)} | "
                    f"{_paired(o, '04_rerank', ranks, 'slow_all_ranks')} | "
                    f"{m['value']:.1f} [{m['low']:.1f}, {m['high']:.1f}] | "
                    f"{r[name + '_smallest_K_within_1']} / {r[name + '_smallest_K_by_bound']} / "
                    f"{r.get(name + '_smallest_K_within_1_all_queries', 'not scored')} |")
    rows.append(f"| Slow on everything | {_ci(o, '04_rerank', 'slow_all_ranks')} | | | | | |")
    rows += ["", f"{r['queries']} test queries against all {r['gallery']:,} test images, "
             f"{r['device']}; \"at most lost\": Fast's miss rate at K = 10 on every test query, "
             "which bounds what re-ranking can lose to Slow on everything; \"paired on all\": "
             "Slow on everything for every test query, once (`scripts/rerank_all_queries.py`, "
             "notebook 04). Cost "
             "per query as the gallery grows (K = 10):", "",
             "| gallery N | Slow on everything, ms | Fast + Slow(10), ms | speed-up | ideal N/K |",
             "|---|---|---|---|---|"]
    rows += [f"| {x['N']:,} | {x['slow_ms']:,.0f} | {x['fast_slow_ms']:.2f} | "
             f"{x['speedup']:,.0f}x | {x['ideal']:,.0f}x |" for x in r["scale"]]
    return "\n".join(rows)


def _video(summary: Mapping, results_dir: Path) -> str:
    v, o = summary["05_video"], load_outcomes(results_dir)
    names = [k[: -len("_R@1")] for k in v if k.endswith("_R@1") and not k.startswith("slow_")
             and not k.startswith("rerank")]
    rows = ["| | R@1 / R@5 / R@10 | consistent@1 | order probe [95% interval] | reversed | "
            "swapped |", "|---|---|---|---|---|---|"]
    for n in names:
        probe = (_ci(o, "05_video", f"{n}_probe") if f"{n}_probe" in o.get("05_video", {})
                 else f"{v[n + '_probe']:.1f}")
        rows.append(f"| {n} | {v[n + '_R@1']:.1f} / {v[n + '_R@5']:.1f} / {v[n + '_R@10']:.1f} "
                    f"| {v[n + '_consistent@1']:.1f} | {probe} | {v[n + '_probe_reversed']:.1f} "
                    f"| {v[n + '_probe_swapped']:.1f} |")
    rows += ["", f"{v['queries']} test queries against all {v['gallery']} test clips of "
             f"{v['frames']} frames ({v['train_clips']:,} training clips), {v['device']}. "
             f"Re-ranking {v['rerank_fast']}'s top K with Slow: R@1 by K "
             + ", ".join(f"{k}: {x:.1f}" for k, x in
                         sorted(v["rerank_R@1_by_K"].items(), key=lambda kv: int(kv[0])))
             + f"; at K = {v.get('speedup_K', v.get('smallest_K_within_1_of_slow'))}, "
             f"{v['fast_slow_ms_per_query']:.2f} ms per query against "
             f"{v['slow_all_ms_per_query']:.1f} ms for Slow on everything: "
             f"{v['speedup']:.0f}x (ideal {v['ideal_speedup']:.0f}x)."]
    return "\n".join(rows)


def _scale(summary: Mapping, _: Path) -> str:
    s = summary["06_demo_and_scale"]
    rows = ["| index | build | bytes/vector | ms/query | recall@10 vs flat |",
            "|---|---|---|---|---|"]
    rows += [f"| {kind} | {r['build_s']:.1f} s | {r['bytes']:.0f} | {r['ms']:.3f} | "
             f"{r['recall']:.3f} |" for kind, r in s["index"].items()]
    c, p = s["measured_costs"], s["projected_1e9"]
    tib = 2.0 ** 40
    rows += ["", f"FAISS at N = {s['index_N']:,} synthetic clustered vectors, {s['device']}. "
             f"Measured per-item costs: Slow {c['slow_pair_ms']:.3f} ms per (query, image) pair, "
             f"Fast + Slow(10) re-scoring {c['rerank_ms']:.1f} ms per query, Slow's cache "
             f"{c['bytes_slow'] / 1024:.0f} KiB per image. Projected to 10^9 items: Slow on "
             f"everything {p['slow_all_ms'] / 1e3 / 86400:.1f} days per query, Fast (IVF-PQ) + "
             f"Slow(10) {p['fast_ann_slow_ms']:.1f} ms; a flat index "
             f"{p['flat_bytes'] / tib:.2f} TiB, IVF-PQ codes {p['ann_bytes'] / tib:.2f} TiB, "
             f"Slow's cache {p['slow_cache_bytes'] / tib:.0f} TiB."]
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
                 "the gallery grows to 10^4; the 5K protocol (near-duplicates); Pareto plots",
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
        met = (f"{sum(r['met'] == 'met' for r in mine)} of {len(mine)}" if mine else "(none)")
        seconds = times.get(f"{name}.ipynb")
        shown = f"{seconds:.0f} s" if seconds is not None else "not run yet"
        lines.append(f"| [{name}](notebooks/{name}.ipynb) | {builds} | {shown} | {met} |")
    machine = summary.get("course", {}).get("machine", "this machine")
    lines += ["", f"Whole course (`make course`, every notebook top to bottom with the live "
              f"demonstrations trained): **{times['total'] / 60:.1f} minutes** on {machine} "
              "(the course's target: 8 minutes, at most 12)."]
    return "\n".join(lines)


def _release(_: Mapping, folder: Path) -> str:
    data = manifest(repo_root() / "data" / "release")
    models = data["models"]
    lines = ["| release model | what | budget | training | validation | weights |",
             "|---|---|---|---|---|---|"]
    total = 0.0
    for name, spec in REGISTRY.items():
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
    lines += _reproduce_checks(folder)
    return "\n".join(lines)


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
