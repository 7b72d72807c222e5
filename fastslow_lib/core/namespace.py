"""A package's flat, lazy namespace (PEP 562), the way d2l gives its book one import.

``flat_namespace(__name__, EXPORTS)`` in a package's ``__init__`` returns its ``__all__``,
``__getattr__`` and ``__dir__``: ``package.NAME`` imports NAME's module (named by the table
``EXPORTS``: module -> names) on first use and keeps the value, so importing the package imports
none of them (and not torch). An unknown name is an AttributeError suggesting close matches; a
name listed twice is an error when the table is read. A flat name that is also a submodule's
name (the function ``rerank`` of ``fastslow_lib.rerank``) keeps meaning the flat one after the
submodule is imported. Used by ``fastslow_lib`` and ``fastslow_course``; taught in every
notebook's first cell. Standard library only.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from difflib import get_close_matches
from importlib import import_module

__all__ = ["flat_namespace"]


def flat_namespace(package: str, exports: Mapping[str, tuple[str, ...]]
                   ) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` of ``package`` for the table ``exports``."""
    module_of: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in module_of:
                raise ValueError(f"{name!r} is listed twice: under {module_of[name]} and {module}")
            module_of[name] = module
    names = sorted(module_of)
    namespace = sys.modules[package]

    def getattr_(name: str) -> object:
        module = module_of.get(name)
        if module is None:
            close = get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise AttributeError(f"module {package!r} has no attribute {name!r}{hint}")
        value = getattr(import_module(module), name)
        vars(namespace)[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*names, *(k for k in vars(namespace) if k.startswith("__"))})

    class FlatPackage(types.ModuleType):
        """Importing a submodule binds it on its package; skipped for a flat name of the same
        name (``from package.sub import ...`` and ``sys.modules`` are unaffected)."""

        def __setattr__(self, name: str, value: object) -> None:
            if name in module_of and isinstance(value, types.ModuleType) \
                    and value.__name__ == f"{package}.{name}":
                return
            super().__setattr__(name, value)

    namespace.__class__ = FlatPackage
    return names, getattr_, dir_
