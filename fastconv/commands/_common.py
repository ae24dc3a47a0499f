"""What the subcommands share: the one-line user error and the argparse value types.

The value types convert the text and then validate it with :mod:`fastconv._args`,
turning any failure into argparse's "argument --x: expected ..., got '...'" message.
"""

from __future__ import annotations

import argparse

from .._args import as_float, as_int

__all__ = ["CLIError", "one_line", "positive_int", "nonneg_int", "positive_float", "shape3"]


class CLIError(Exception):
    """An error reported to the user as one line on stderr, with exit code 2."""


def one_line(exc):
    """The message of ``exc`` on one line (its type name when it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _arg_type(parse, check, what):
    """An argparse ``type=``: ``check(parse(text))``, any TypeError/ValueError reported as
    "expected <what>, got '<text>'"."""

    def convert(text):
        try:
            return check(parse(text))
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    convert.__name__ = what
    return convert


def _three_ints(text):
    parts = tuple(int(v) for v in text.replace("x", ",").split(","))
    if len(parts) != 3:
        raise ValueError(f"expected 3 values, got {len(parts)}")
    return parts


positive_int = _arg_type(int, lambda v: as_int(v, "value", minimum=1), "a positive integer")
nonneg_int = _arg_type(int, lambda v: as_int(v, "value", minimum=0), "an integer >= 0")
positive_float = _arg_type(float, lambda v: as_float(v, "value", low=0.0, low_open=True), "a positive number")
#: "C,H,W" (or "CxHxW"): three positive ints, as a tuple.
shape3 = _arg_type(_three_ints, lambda t: tuple(as_int(v, "C,H,W", minimum=1) for v in t),
                   "C,H,W (three positive ints)")
