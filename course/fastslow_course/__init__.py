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
imports none of the modules (and so neither torch nor the method); ``course.NAME`` imports
NAME's module on first use and keeps the value. The full paths keep working.
"""

from __future__ import annotations

import sys
import types
from difflib import get_close_matches
from importlib import import_module

#: The flat namespace, as data: module -> the public names ``course.NAME`` takes from it (the
#: module that defines each name, not one that re-exports it).
EXPORTS: dict[str, tuple[str, ...]] = {
    "fastslow_course.manifest": ("chosen_student", "manifest", "release_dir"),
    "fastslow_course.release": ("Releases", "release_model", "release_test_scores"),
    "fastslow_course.results": ("load_summary", "record", "record_outcomes",
                                "resolve_results_dir"),
    "fastslow_course.report": ("claims_rows",),
    "fastslow_course.test5k": ("Kept5K",),
    "fastslow_course.exercises": (
        "check_caption_logprob", "check_distillation_loss", "check_info_nce_with_hard_negatives",
        "check_machines", "check_ranks", "check_rerank_top1", "check_reverse_events",
    ),
    "fastslow_course.widgets": ("SearchDemo",),
}

def _index(*tables: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """name -> module, over every table; a name listed twice is an error."""
    index: dict[str, str] = {}
    for table in tables:
        for module, names in table.items():
            for name in names:
                if name in index:
                    raise ValueError(f"{name!r} is listed twice: under {index[name]} and {module}")
                index[name] = module
    return index


_MODULE_OF: dict[str, str] = _index(EXPORTS)

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> object:
    """``course.NAME``: import NAME's module on first use, keep the value for the next."""
    module = _MODULE_OF.get(name)
    if module is None:
        close = get_close_matches(name, __all__, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}{hint}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *(k for k in globals() if k.startswith("__"))})


class _FlatPackage(types.ModuleType):
    """The package's module type: a flat name that is also a submodule's name (the function
    ``manifest`` of the module ``fastslow_course.manifest``) keeps meaning the function.

    Importing a submodule binds it on its package (``fastslow_course.manifest = <module>``),
    which would make ``course.manifest`` the module once anything imported it; that binding is
    skipped for those names. ``from fastslow_course.manifest import ...`` is unaffected.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _MODULE_OF and isinstance(value, types.ModuleType) \
                and value.__name__ == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _FlatPackage
