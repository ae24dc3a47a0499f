"""fastconv.inference: compiled inference plans.

``plan = fastconv.compile(model)`` lowers a network of ``fastconv.nn`` modules
to an IR (:mod:`.ir`, :mod:`.lower`), folds BatchNorm and fuses activations,
residual adds and pools into the preceding op's epilogue (:mod:`.fuse`), and
for each input shape plans every intermediate buffer into one arena
(:mod:`.memory`) and builds the C executor's op array (:mod:`.plan`).
``plan(x)`` then runs the whole network in one call into C, GIL released.
"""

from .plan import Plan, compile

__all__ = ["compile", "Plan"]
