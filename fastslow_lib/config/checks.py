"""The library's argument checks for plain values: ints, numbers, bools and seeds.

Every module that takes a size, a count, a seed or a flag checks it here, so the same mistake
(``True`` or ``2.0`` for a size, ``0`` for a count, ``"yes"`` for a flag) fails everywhere with
the same message, naming the argument: ``"max_len must be an int, got float 2.0"``,
``"max_len must be at least 3, got 2"``. A value of the wrong type raises TypeError, unless the
caller asks for ``type_error=ValueError`` (the checks that always raised ValueError keep doing
so); a value out of range raises ValueError.

This module sits at the bottom of the library and imports nothing from it.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "SEED_LIMIT",
    "check_bool",
    "check_int",
    "check_int_fields",
    "check_number",
    "check_optional_int",
    "check_seed",
]

#: Seeds must lie in ``[0, SEED_LIMIT)``: numpy's legacy seeding accepts no more.
SEED_LIMIT = 2**32


def _describe(value: object) -> str:
    """``"float 2.0"``: the type and the value, for the message of a wrong-type error."""
    return f"{type(value).__name__} {value!r}"


def _checked_int(value: object, name: str, minimum: int | None, maximum: int | None,
                 allow_numpy: bool, type_error: type[Exception], kind: str) -> int:
    integer_types = numbers.Integral if allow_numpy else int
    if isinstance(value, bool) or not isinstance(value, integer_types):
        raise type_error(f"{name} must be {kind}, got {_describe(value)}")
    number = int(value)
    too_low = minimum is not None and number < minimum
    too_high = maximum is not None and number > maximum
    if too_low or too_high:
        if minimum is not None and maximum is not None:
            bound = f"between {minimum} and {maximum}"
        elif too_low:
            bound = f"at least {minimum}"
        else:
            bound = f"at most {maximum}"
        raise ValueError(f"{name} must be {bound}, got {number}")
    return number


def check_int(value: object, name: str, minimum: int | None = 1, *,
              maximum: int | None = None, allow_numpy: bool = False,
              type_error: type[Exception] = TypeError) -> int:
    """``value`` as a plain ``int`` if it is an int (not a bool) in ``[minimum, maximum]``.

    ``minimum=None`` or ``maximum=None`` leaves that side open. ``allow_numpy`` also accepts
    numpy integers (any :class:`numbers.Integral`). A non-int raises ``type_error`` ("NAME must
    be an int, got TYPE VALUE"); an int out of range raises ValueError ("NAME must be at least
    MIN, got VALUE", or "between MIN and MAX" when both bounds are given).
    """
    return _checked_int(value, name, minimum, maximum, allow_numpy, type_error, "an int")


def check_optional_int(value: object, name: str, minimum: int | None = 1, *,
                       maximum: int | None = None, allow_numpy: bool = False,
                       type_error: type[Exception] = TypeError) -> int | None:
    """None if ``value`` is None, else :func:`check_int` of it ("an int or None" if wrong)."""
    if value is None:
        return None
    return _checked_int(value, name, minimum, maximum, allow_numpy, type_error,
                        "an int or None")


def check_int_fields(obj: object, *names: str, minimum: int = 1,
                     type_error: type[Exception] = TypeError) -> None:
    """:func:`check_int` of each attribute ``names`` of ``obj`` (a config's size fields)."""
    for name in names:
        check_int(getattr(obj, name), name, minimum, type_error=type_error)


def check_number(value: object, name: str, *, positive: bool = False,
                 type_error: type[Exception] = TypeError) -> float:
    """``value`` as a ``float`` if it is a finite int or float (not a bool), > 0 if ``positive``.

    A non-number raises ``type_error`` ("NAME must be a number, got TYPE VALUE"); NaN or inf
    ("NAME must be finite") and, with ``positive``, zero or less ("NAME must be positive")
    raise ValueError.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(f"{name} must be a number, got {_describe(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be positive, got {number}")
    return number


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a bool; else a TypeError (catches e.g. ``reverse="yes"`` or ``1``)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_describe(value)}")
    return value


def check_seed(seed: object, *, allow_numpy: bool = True) -> int:
    """``seed`` as a plain ``int`` if it is an integer in ``[0, 2**32)``, usable everywhere.

    Python ints, and numpy integers unless ``allow_numpy`` is False (a config that is saved
    as JSON needs a plain int). Rejects ``bool`` (``True`` is an ``int`` in Python, but almost
    certainly a bug here) and floats, even integral ones.
    """
    value = check_int(seed, "seed", minimum=None, allow_numpy=allow_numpy)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"seed must satisfy 0 <= seed < 2**32, got {value}")
    return value
