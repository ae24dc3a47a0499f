"""The one source of fastconv's version number.

``fastconv.__version__`` re-exports it, and ``pyproject.toml`` reads it at build
time (``[tool.setuptools.dynamic]``). Low-level modules that need the version
import this module, never the ``fastconv`` package itself.
"""

__version__ = "0.1.0"
