"""The plain-NumPy baseline now lives in the package (fastconv/_numpy_baseline.py); re-exported here."""
from fastconv._numpy_baseline import *  # noqa: F401,F403
from fastconv._numpy_baseline import __all__  # noqa: F401
