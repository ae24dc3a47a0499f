"""``fastconv info``: version, build, OpenMP, threads, CPU features and optional packages."""

from __future__ import annotations

import importlib

from .. import show_config
from .._backend import get_backend

__all__ = ["add_parser", "run"]

#: Optional third-party packages whose presence ``fastconv info`` reports.
OPTIONAL = ("tqdm", "matplotlib")


def add_parser(sub):
    return sub.add_parser("info", help="version, build, OpenMP, threads and CPU features",
                          description="Show fastconv's version, build and runtime configuration.")


def run(args):
    show_config()
    print(f"  layer backend {get_backend()}")
    extras = []
    for name in OPTIONAL:
        try:
            m = importlib.import_module(name)
            extras.append(f"{name} {getattr(m, '__version__', '?')}")
        except ImportError:
            extras.append(f"{name} not installed")
    print(f"  optional      {', '.join(extras)}")
    return 0
