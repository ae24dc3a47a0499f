"""The report: markdown tables of :func:`fastconv.bench.run`'s results, and the environment.

Speedup columns are ``other_time / fastconv_time``: above 1 means fastconv is faster.
"""

from __future__ import annotations

from .impls import conv_algos

__all__ = ["format_table", "format_environment", "CONV_COLUMNS", "POOL_COLUMNS", "TRAIN_COLUMNS",
           "PEAK_COLUMNS"]


def _ms(s):
    return "-" if s is None else (f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.2f}" if s < 1 else f"{s * 1e3:.0f}")


def _num(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)


def _x(v):
    return "-" if v is None else f"{v:.2f}x"


def _pct(v):
    return "-" if v is None else f"{100 * v:.0f}%"


def _md(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


CONV_COLUMNS = ["layer", "threads", "pass", "GFLOP", "fastconv ms", "algo", "fastconv GFLOP/s",
                "% peak", "numpy ms", "torch ms", "torch GFLOP/s", "torch % peak", "vs numpy", "vs torch"]
POOL_COLUMNS = ["pooling", "op", "threads", "pass", "fastconv ms", "numpy ms", "torch ms",
                "vs numpy", "vs torch"]
TRAIN_COLUMNS = ["model", "threads", "batch", "fastconv img/s", "torch img/s", "vs torch", "notes"]
PEAK_COLUMNS = ["threads", "matmul 2048 ms", "peak GFLOP/s", "BLAS threads"]


def format_table(results):
    """Markdown tables (matmul peak, conv, pool, train) of :func:`run`'s results.

    Speedup columns are ``other_time / fastconv_time``: above 1 means fastconv is faster.
    """
    by_kind = {}
    for r in results:
        by_kind.setdefault(r.get("kind"), []).append(r)
    parts = []
    if "matmul" in by_kind:
        parts.append("Machine peak (NumPy float32 2048 x 2048 matmul, best sample, same run):\n\n" + _md(
            PEAK_COLUMNS,
            [[r["threads"], _ms(r["time_s"]), _num(r["gflops"]), _num(r["blas_threads"], "{}")]
             for r in by_kind["matmul"]],
        ))
    if "conv" in by_kind:
        convs = by_kind["conv"]
        seen = {a for r in convs for a in r.get("algo_s", {})}
        algos = [a for a in conv_algos() if a in seen] + sorted(seen - set(conv_algos()))
        header = CONV_COLUMNS[:8] + [f"{a} ms" for a in algos] + CONV_COLUMNS[8:]
        rows = []
        for r in convs:
            per = r.get("algo_s", {})
            cells = [("slow" if per[a] is None else _ms(per[a])) if a in per else
                     ("n/a" if per else "-") for a in algos]
            rows.append([
                r["case"], r["threads"], r["pass"], f"{r['gflop']:.3f}", _ms(r["fastconv_s"]),
                r["algo"] or "-", _num(r["fastconv_gflops"]), _pct(r["peak_fraction"]),
            ] + cells + [
                _ms(r["numpy_s"]), _ms(r["torch_s"]), _num(r["torch_gflops"]),
                _pct(r.get("torch_peak_fraction")), _x(r["speedup_vs_numpy"]), _x(r["speedup_vs_torch"]),
            ])
        parts.append("Convolution (fwd+bwd = forward + backward-data + backward-weight + bias; algo = what "
                     "algo='auto' ran (fwd/bwd when they differ); '<algo> ms' = that algorithm forced, "
                     "'slow' = skipped as much slower than auto, 'n/a' = not applicable to the layer; "
                     "speedup = other time / fastconv time):\n\n" + _md(header, rows))
        notes = sorted({f"{r['case']} ({r['threads']} thr, {r['pass']}): {r['notes']}"
                        for r in convs if r.get("notes")})
        if notes:
            parts.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes))
    if "pool" in by_kind:
        rows = [[r["case"], r["op"], r["threads"], r["pass"], _ms(r["fastconv_s"]), _ms(r["numpy_s"]),
                 _ms(r["torch_s"]), _x(r["speedup_vs_numpy"]), _x(r["speedup_vs_torch"])]
                for r in by_kind["pool"]]
        parts.append("Pooling (speedup = other time / fastconv time):\n\n" + _md(POOL_COLUMNS, rows))
    if "train" in by_kind:
        rows = [[r["case"], r["threads"], r["batch"], _num(r["fastconv_img_s"], "{:.0f}"),
                 _num(r["torch_img_s"], "{:.0f}"), _x(r["speedup_vs_torch"]), r.get("notes") or ""]
                for r in by_kind["train"]]
        parts.append("Training step (SGD momentum, softmax cross-entropy; "
                     "speedup = torch time / fastconv time):\n\n" + _md(TRAIN_COLUMNS, rows))
    return "\n\n".join(parts) + "\n"


def format_environment(env):
    blas = env.get("blas") or {}
    lines = [
        f"date: {env['date']}",
        f"cpu: {env['cpu']} ({env['cores']} cores); features: {', '.join(env['cpu_features']) or '-'}",
        f"python {env['python']}, fastconv {env['fastconv']} (OpenMP {'on' if env['fastconv_openmp'] else 'off'}, "
        f"{env['fastconv_compiler']})",
        f"numpy {env['numpy']}, BLAS: " + (
            f"{blas.get('internal_api')} {blas.get('version')} kernel {blas.get('architecture')} "
            f"({blas.get('threading_layer')})" if blas else "unknown (threadpoolctl not installed)"),
        f"torch: {env['torch'] or 'not importable'}",
        "environment: " + (", ".join(f"{k}={v}" for k, v in env["env"].items()) or "none of OPENBLAS_*, OMP_*, "
                           "MKL_*, FASTCONV_* set"),
    ]
    for key, when in (("loadavg", "start"), ("loadavg_end", "end")):
        if env.get(key):
            lines.append(f"load average (1, 5, 15 min) at {when}: " + ", ".join(f"{v:.2f}" for v in env[key]))
    return "\n".join(lines)
