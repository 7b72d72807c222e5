"""The course's own tooling, apart from the method (``fastslow_lib``): the release models, the
results file and claims table, exercise checkers, and the search widget.

``release``, ``manifest``: the release models (verified loading, ``make reproduce``), every
notebook from 01; ``results``, ``report``: every notebook; ``exercises``: every notebook's
exercises; ``test5k``: the 5K protocol's kept results (notebooks 02-04); ``widgets``:
notebooks/06_demo_and_scale.ipynb.

**The flat namespace.** The notebooks import the tooling once::

    import fastslow_course as course

    model, history, entry = course.release_model("fast", preset, device=device, world=world)
    course.record("01_fast", values)

Every name the notebooks use is an attribute of the package, whatever module defines it
(:data:`EXPORTS` says which). The attributes are lazy (PEP 562): ``import fastslow_course``
imports none of the modules (and so not torch); ``course.NAME`` imports
NAME's module on first use and keeps the value. The full paths keep working.
"""

from __future__ import annotations

from fastslow_lib.core.namespace import flat_namespace

#: The flat namespace, as data: module -> the public names ``course.NAME`` takes from it (the
#: module that defines each name, not one that re-exports it).
EXPORTS: dict[str, tuple[str, ...]] = {
    "fastslow_course.manifest": ("chosen_student", "manifest", "release_dir"),
    "fastslow_course.release": ("Releases", "release_model", "release_test_scores"),
    "fastslow_course.locations": ("resolve_results_dir",),
    "fastslow_course.results": ("load_summary", "record", "record_outcomes",
                                "section_fingerprint"),
    "fastslow_course.report": ("claims_rows",),
    "fastslow_course.test5k": ("Kept5K",),
    "fastslow_course.exercises": (
        "check_caption_logprob", "check_distillation_loss", "check_info_nce_with_hard_negatives",
        "check_machines", "check_ranks", "check_rerank_top1", "check_reverse_events",
    ),
    "fastslow_course.widgets": ("SearchDemo",),
    "fastslow_course.caption_detail": (
        "CONTROL_OF", "DETAILS", "SIGNALS", "protocol_stats", "regime_decision", "regime_gains",
        "teacher_mass", "training_false_negatives",
    ),
    "fastslow_course.experiment": ("provenance", "write_result"),
}

__all__, __getattr__, __dir__ = flat_namespace(__name__, EXPORTS)
