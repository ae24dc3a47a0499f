"""The benchmark layer set, the shapes every speed figure of fastconv is reported on
(tabulated in BENCHMARKS.md by :func:`layer_set_markdown`), and the choice of cases
and thread counts."""

from __future__ import annotations

import numpy as np

from .._args import conv_params
from .._runtime import get_num_threads

__all__ = [
    "CONV_CASES",
    "POOL_CASES",
    "TRAIN_CASES",
    "TRAIN_BATCH",
    "TRAIN_LR",
    "TRAIN_MOMENTUM",
    "GROUPS",
    "select_cases",
    "thread_list",
    "case_params",
    "LAYER_ORIGINS",
    "layer_set_markdown",
    "CONV1D_CASES",
    "CONVT_CASES",
    "convt_case",
    "INFER_CASES",
    "INFER_BATCHES",
]

#: name -> (N, C, H, W, K, R, S, stride, pad, groups); FLOPs = 2 N K (C/groups) R S P Q.
CONV_CASES = {
    "lenet_c1": (64, 1, 28, 28, 20, 5, 5, 1, 0, 1),
    "lenet_c2": (64, 20, 12, 12, 50, 5, 5, 1, 0, 1),
    "cifar_c1": (32, 3, 32, 32, 32, 3, 3, 1, 1, 1),
    "cifar_c2": (32, 32, 32, 32, 64, 3, 3, 1, 1, 1),
    "resnet_stem": (8, 3, 224, 224, 64, 7, 7, 2, 3, 1),
    "resnet_3x3": (8, 64, 56, 56, 64, 3, 3, 1, 1, 1),
    "resnet_3x3s2": (8, 128, 56, 56, 128, 3, 3, 2, 1, 1),
    "resnet_1x1": (8, 256, 56, 56, 64, 1, 1, 1, 0, 1),
    "resnet_c4": (8, 256, 14, 14, 256, 3, 3, 1, 1, 1),
    "depthwise": (8, 256, 28, 28, 256, 3, 3, 1, 1, 256),
}

#: Where each convolution case comes from.
LAYER_ORIGINS = {
    "lenet_c1": "LeNet-5 on MNIST",
    "lenet_c2": "LeNet-5 on MNIST",
    "cifar_c1": "small VGG on CIFAR-10",
    "cifar_c2": "small VGG on CIFAR-10",
    "resnet_stem": "ResNet-50 conv1",
    "resnet_3x3": "ResNet-50 res2 3x3",
    "resnet_3x3s2": "ResNet-50 res3 strided 3x3",
    "resnet_1x1": "ResNet-50 res2 1x1 reduce",
    "resnet_c4": "ResNet-50 res4 3x3",
    "depthwise": "MobileNet depthwise",
}

#: name -> (N, C, H, W, kernel, stride, pad); each is run as max and as avg pooling.
POOL_CASES = {
    "pool2_cifar": (32, 64, 32, 32, 2, 2, 0),
    "pool3_stem": (8, 64, 112, 112, 3, 2, 1),
}

#: name -> (input shape of one image, number of classes); batch TRAIN_BATCH.
TRAIN_CASES = {
    "lenet5": ((1, 28, 28), 10),
    "vgg_small": ((3, 32, 32), 10),
    "resnet_small": ((3, 32, 32), 10),
}
TRAIN_BATCH = 64
TRAIN_LR = 0.01
TRAIN_MOMENTUM = 0.9

#: 1-d convolution cases: name -> (N, C, L, K, R, stride, pad, groups) on (N, C, L) arrays;
#: FLOPs = 2 N K (C/groups) R L_out. "conv1d_audio" is issue 14's target layer.
CONV1D_CASES = {
    "conv1d_audio": (16, 64, 4000, 64, 9, 1, 4, 1),
    "conv1d_text": (32, 128, 256, 128, 5, 1, 2, 1),
    "conv1d_strided": (8, 32, 16000, 64, 11, 4, 5, 1),
}

#: Transposed convolution cases: the transposed version of every convolution case (its
#: adjoint: input (N, K, P, Q), weights (K, C/groups, R, S) in PyTorch's layout, the same
#: stride, padding and groups, output_padding chosen so the output is (N, C, H, W) again).
CONVT_CASES = tuple(f"{name}_t" for name in CONV_CASES)

#: Inference cases: model -> (input shape of one image); run at each of INFER_BATCHES.
INFER_CASES = {"lenet5": (1, 28, 28), "vgg_small": (3, 32, 32)}
INFER_BATCHES = (1, 64)

GROUPS = {"conv": tuple(CONV_CASES), "pool": tuple(POOL_CASES), "train": tuple(TRAIN_CASES)}
GROUPS["all"] = GROUPS["conv"] + GROUPS["pool"] + GROUPS["train"]


def select_cases(cases):
    """Normalise ``cases`` (a name, a group ``all|conv|pool|train``, or a list / comma string of
    them) to a list of known case names in layer-set order, without duplicates."""
    if cases is None:
        cases = "all"
    if isinstance(cases, str):
        items = [c.strip() for c in cases.split(",") if c.strip()]
    else:
        try:
            items = [str(c).strip() for c in cases]
        except TypeError:
            raise TypeError(f"cases must be a string or a list of case names, got {cases!r}") from None
    if not items:
        raise ValueError("cases is empty: give case names or one of all, conv, pool, train")
    chosen = set()
    for item in items:
        if item in GROUPS:
            chosen.update(GROUPS[item])
        elif item in GROUPS["all"]:
            chosen.add(item)
        else:
            raise ValueError(
                f"unknown benchmark case {item!r}; choose from the groups {', '.join(sorted(GROUPS))} "
                f"or the cases {', '.join(GROUPS['all'])}"
            )
    return [c for c in GROUPS["all"] if c in chosen]


def thread_list(threads, quick=False):
    """Normalise ``threads`` (None, an int, a list of ints or a comma string "1,2") to a list
    of distinct positive thread counts. None: 1 and fastconv's current count, or with
    ``quick`` only the current count."""
    if threads is None:
        threads = [get_num_threads()] if quick else sorted({1, get_num_threads()})
    elif isinstance(threads, str):
        try:
            threads = [int(t) for t in threads.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"threads must be a comma-separated list of positive ints, got {threads!r}") from None
    elif isinstance(threads, int) and not isinstance(threads, bool):
        threads = [threads]
    out = []
    for t in threads:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
            raise ValueError(f"threads must be positive ints, got {threads!r}")
        if int(t) not in out:
            out.append(int(t))
    if not out:
        raise ValueError("threads is empty")
    return out


def case_params(name):
    """The ``ConvParams`` (geometry) of convolution case ``name``."""
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    return conv_params((N, C, H, W), (K, C // groups, R, S), stride, pad, 1, groups)


def convt_case(name):
    """(N, C_in, H_in, W_in, C_out, R, S, stride, pad, output_padding, groups) of transposed
    case ``name`` (a CONVT_CASES entry, e.g. ``"resnet_3x3_t"``)."""
    if name not in CONVT_CASES:
        raise ValueError(f"unknown transposed convolution case {name!r}; choose from {', '.join(CONVT_CASES)}")
    base = name[:-2]
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[base]
    p = case_params(base)
    P, Q = p.P, p.Q
    op_h = H - ((P - 1) * stride - 2 * pad + R)
    op_w = W - ((Q - 1) * stride - 2 * pad + S)
    return N, K, P, Q, C, R, S, stride, pad, (op_h, op_w), groups


def layer_set_markdown():
    """The layer set as the Markdown tables BENCHMARKS.md carries (a test keeps them equal)."""
    rows = ["| name | N | C | H x W | K | R x S | stride | pad | groups | from |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (N, C, H, W, K, R, S, stride, pad, groups) in CONV_CASES.items():
        rows.append(f"| {name} | {N} | {C} | {H} x {W} | {K} | {R} x {S} | {stride} | {pad} "
                    f"| {groups} | {LAYER_ORIGINS[name]} |")
    rows += ["", "| pooling | N | C | H x W | kernel | stride | pad |",
             "|---|---|---|---|---|---|---|"]
    for name, (N, C, H, W, k, stride, pad) in POOL_CASES.items():
        rows.append(f"| {name} | {N} | {C} | {H} x {W} | {k} | {stride} | {pad} |")
    return "\n".join(rows) + "\n"

