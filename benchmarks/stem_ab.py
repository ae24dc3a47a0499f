"""The stem kernel A/B: each network's compiled plan as the policy builds it ("after":
its first conv runs "stem") against the same plan with that conv forced to "direct"
("before", the policy before FC_PLAN_STEM). Per-op time of the first conv, the sum of the
per-op profile and the wall time of plan calls; rounds interleaved (A/B, B/A), best of
the rounds (the machine is shared). Run from the repository root:

    PYTHONPATH=. python benchmarks/stem_ab.py mobilenet_v2,squeezenet1_1,resnet18,vgg_small,lenet5 1,8 11
"""
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastconv  # noqa: E402
from fastconv.inference import plan as plan_mod  # noqa: E402
from fastconv.models import get_model  # noqa: E402
import zoo  # noqa: E402

names = sys.argv[1].split(",")
batches = [int(b) for b in sys.argv[2].split(",")]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 9
for name in names:
    if name in ("lenet5", "vgg_small"):
        model = get_model(name, seed=0)
        inp = (1, 28, 28) if name == "lenet5" else (3, 32, 32)
    else:
        t = zoo.build(name, seed=0)
        path = zoo.export(t, os.path.join(tempfile.mkdtemp(), f"{name}.onnx"), (1,) + zoo.INPUT[name])
        model = fastconv.onnx.load(path)
        inp = zoo.INPUT[name]
    plan = fastconv.compile(model)
    for N in batches:
        x = np.random.default_rng(0).standard_normal((N,) + tuple(inp)).astype(np.float32)
        after = plan.compiled_for(x)
        first = [n.output for n in plan.fused.nodes if n.op == "conv"][0]
        before = plan_mod._Compiled(plan, after.shapes, after.geoms, {first: "direct"})
        ya, yb = after.run(x), before.run(x)
        assert np.allclose(ya, yb, rtol=1e-3, atol=1e-3 * np.abs(yb).max())
        res = {"before": ([], [], []), "after": ([], [], [])}
        for r in range(rounds):
            for lab, c in (("before", before), ("after", after)) if r % 2 else (("after", after), ("before", before)):
                prof = c.profile(x, 5)
                res[lab][0].append(prof[0][1])
                res[lab][1].append(sum(s for _, s in prof))
                t0 = time.perf_counter(); k = 0
                while time.perf_counter() - t0 < 0.05:
                    c.run(x); k += 1
                res[lab][2].append((time.perf_counter() - t0) / k)
        med = {lab: [np.min(v) * 1e6 for v in res[lab]] for lab in res}
        b, a = med["before"], med["after"]
        print(f"{name:14s} b{N}: {after.names[0][:18]:18s} first conv {b[0]:8.1f} -> {a[0]:8.1f} us ({a[0]/b[0]:.2f}x)"
              f" | ops sum {b[1]:8.1f} -> {a[1]:8.1f} ({a[1]/b[1]:.2f}x) | plan call {b[2]:8.1f} -> {a[2]:8.1f} ({a[2]/b[2]:.2f}x)", flush=True)
