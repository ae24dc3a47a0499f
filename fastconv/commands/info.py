"""``fastconv info``: version, build, OpenMP, threads, CPU features and optional packages."""

from __future__ import annotations

from importlib import metadata

from .._config import show_config
from .._backend import get_backend

__all__ = ["add_parser", "run"]

#: Optional third-party packages whose presence ``fastconv info`` reports.
OPTIONAL = ("tqdm", "matplotlib", "onnx", "onnxruntime", "mpi4py")


def add_parser(sub):
    return sub.add_parser("info", help="version, build, OpenMP, threads and CPU features",
                          description="Show fastconv's version, build and runtime configuration.")


def run(args):
    show_config()
    print(f"  layer backend {get_backend()}")
    extras = []
    for name in OPTIONAL:
        try:  # the installed distribution's version, without importing the package
            extras.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            extras.append(f"{name} not installed")
    print(f"  optional      {', '.join(extras)}")
    return 0
