"""The stem kernel A/B: each network's compiled plan as the policy builds it ("after":
its first conv runs "stem" where the policy picks it) against the same plan with that
conv forced to "direct" ("before", the policy before FC_PLAN_STEM).

For each network and batch it prints the per-op time of the first conv, the sum of the
per-op profile and the wall time of plan calls; the rounds are interleaved (A/B, B/A)
and the best round of each side is reported (the machine is shared). Run from the
repository root:

    python benchmarks/stem_ab.py --models mobilenet_v2,squeezenet1_1,resnet18,vgg_small,lenet5 --batches 1,8 --rounds 11

The ImageNet networks need torch and onnx (exported through benchmarks/zoo.py).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastconv  # noqa: E402
from fastconv.inference import plan as plan_mod  # noqa: E402
from fastconv.models import get_model  # noqa: E402

SMALL = {"lenet5": (1, 28, 28), "vgg_small": (3, 32, 32)}
ZOO_NAMES = ("resnet18", "mobilenet_v2", "squeezenet1_1", "alexnet_small")


def _positive_ints(text, what):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be comma-separated whole numbers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{what} must be at least 1, got {text!r}")
    return values


def _models(text):
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in SMALL and n not in ZOO_NAMES]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(bad) or repr(text)}; choose from "
            f"{', '.join(list(SMALL) + list(ZOO_NAMES))}")
    return names


def _load(name):
    if name in SMALL:
        return get_model(name, seed=0), SMALL[name]
    import fastconv.onnx
    import zoo
    net = zoo.build(name, seed=0)
    path = zoo.export(net, os.path.join(tempfile.mkdtemp(), f"{name}.onnx"), (1,) + zoo.INPUT[name])
    return fastconv.onnx.load(path), zoo.INPUT[name]


def _ab(name, plan, x, rounds):
    after = plan.compiled_for(x)
    first = [n.output for n in plan.fused.nodes if n.op == "conv"][0]
    before = plan_mod._Compiled(plan, after.shapes, after.geoms, {first: "direct"})
    ya, yb = after.run(x), before.run(x)
    if not np.allclose(ya, yb, rtol=1e-3, atol=1e-3 * np.abs(yb).max()):
        raise SystemExit(f"{name}: the stem and direct plans disagree "
                         f"(max difference {np.abs(ya - yb).max():.3g})")
    res = {"before": ([], [], []), "after": ([], [], [])}
    for r in range(rounds):
        order = (("before", before), ("after", after)) if r % 2 else (("after", after), ("before", before))
        for lab, c in order:
            prof = c.profile(x, 5)
            res[lab][0].append(prof[0][1])
            res[lab][1].append(sum(s for _, s in prof))
            t0 = time.perf_counter()
            k = 0
            while time.perf_counter() - t0 < 0.05:
                c.run(x)
                k += 1
            res[lab][2].append((time.perf_counter() - t0) / k)
    best = {lab: [np.min(v) * 1e6 for v in res[lab]] for lab in res}
    return after.names[0], best["before"], best["after"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=_models, default=_models("mobilenet_v2,squeezenet1_1,resnet18"),
                    help="comma-separated: lenet5, vgg_small, resnet18, mobilenet_v2, "
                         "squeezenet1_1, alexnet_small")
    ap.add_argument("--batches", type=lambda t: _positive_ints(t, "--batches"), default=[1],
                    help="comma-separated batch sizes (default 1)")
    ap.add_argument("--rounds", type=lambda t: _positive_ints(t, "--rounds")[0], default=9,
                    help="interleaved rounds per side (default 9)")
    args = ap.parse_args(argv)
    for name in args.models:
        model, inp = _load(name)
        plan = fastconv.compile(model)
        for n in args.batches:
            x = np.random.default_rng(0).standard_normal((n,) + tuple(inp)).astype(np.float32)
            op, b, a = _ab(name, plan, x, args.rounds)
            print(f"{name:14s} b{n}: {op[:18]:18s} first conv {b[0]:8.1f} -> {a[0]:8.1f} us "
                  f"({a[0] / b[0]:.2f}x) | ops sum {b[1]:8.1f} -> {a[1]:8.1f} ({a[1] / b[1]:.2f}x)"
                  f" | plan call {b[2]:8.1f} -> {a[2]:8.1f} ({a[2] / b[2]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
