"""The plan's "pointwise" convolutions: 1x1 convs with the pointwise kernel.

A 1x1, stride-1, unpadded, ungrouped conv is Y[K, P*Q] = W[K, C] . X[C, P*Q] per
image, X read as it lies in NCHW. The GEMM conv packs X (its B operand) for every
share of output channels, and at batch 1 the executor gives each thread a share,
so with few output channels (MobileNetV2's projections, SqueezeNet's squeeze
convs) every thread packs the whole input again, and the activation runs as a
pass of its own. The pointwise kernel (csrc/conv_pw.h) reads X directly in
register tiles of pixels, applies the epilogue in registers, and the executor
splits an image's pixels over the threads; its weights are packed once, here
(:class:`fastconv._kernels.PwWeights`, one layout for every SIMD level, so a
later ``fastconv.set_isa`` needs no repacking).
"""

from __future__ import annotations

from .. import _kernels as K

__all__ = ["pw_ok", "pw_pays", "PwCache"]

#: The auto rule (pw_pays): at least MIN_PIXELS output pixels per image and at most
#: MAX_CHANNELS output channels; at a batch that divides over the threads, any plane
#: and at least WHOLE_MIN_IN input channels instead.
MIN_PIXELS = 256
MAX_CHANNELS = 64
WHOLE_MIN_IN = 96


def pw_ok(p, fused_pool=False):
    """The pointwise kernel can run ``p`` (a conv geometry): 1x1, stride 1, no padding,
    dilation 1, groups 1, and no pool fused into the op."""
    return (p.R, p.S) == (1, 1) and tuple(p.stride) == (1, 1) and \
        tuple(p.dilation) == (1, 1) and p.groups == 1 and not fused_pool and \
        (p.pad_top, p.pad_bottom, p.pad_left, p.pad_right) == (0, 0, 0, 0)


def pw_pays(p, fused_pool=False, nth=2):
    """The auto rule for a conv the policy would run as "gemm" or "gemmt": few output
    channels (where the GEMM conv's per-thread channel shares repeat the input packing)
    on large planes. Measured per layer (float32, AVX-512, 2 threads, batch 1, one-conv
    plans + ReLU, pointwise / gemm time interleaved in one process): 32->16 112x112
    0.63x, 96->24 56x56 0.60x, 144->24 56x56 0.76x, 192->32 28x28 0.78x, 144->32 28x28
    0.82x, 64->16 55x55 0.52x, 128->16 55x55 0.54x, 256->32 27x27 0.78x, 16->64 55x55
    0.78x; but 384->64 14x14 1.03x, 576->96 14x14 1.14x, 96->576 14x14 1.25x, 16->96
    112x112 1.08x, 160->960 7x7 (gemmt) 1.58x, 512->1000 13x13 1.22x. Only where the
    batch does not divide over the ``nth`` threads (the executor would cut images into
    channel shares): at batch 3 the layers the rule takes ran 0.53-0.96x, but at batch
    8 (whole images per thread, no repeated packing) 0.82x (32->16 112x112), 0.90-1.01x
    (squeezenet's 55x55) and 1.0-1.4x the others. Whole networks at batch 1 (plan time,
    A/B interleaved in one process): mobilenet_v2 0.94-0.96x, squeezenet1_1 0.96-0.98x;
    at batch 3 0.98x / 0.99-1.03x.

    At a batch that divides over the threads (whole images per thread) the reducing 1x1
    convs, at most MAX_CHANNELS output channels from at least WHOLE_MIN_IN input channels,
    on any plane: inside the networks at batch 8 (per-op profile, pointwise / gemm)
    384->64 and 192->64 at 14x14 0.55x, 192->32 at 28x28 0.79x, 144->24 at 56x56 0.90x,
    96->24 0.92x, while the expanding ones lost (16->96 112x112 1.26x, 24->144 56x56
    1.2-1.3x). Whole networks, A/B interleaved: mobilenet_v2 at batch 8 0.950-0.964x and
    at batch 2 0.938x, squeezenet1_1 at batch 8 0.946x and at batch 2 0.955x (48 input
    channels: 0.944x / 0.973x; 160: 0.952x / 0.966x)."""
    if not pw_ok(p, fused_pool) or nth < 2:
        return False
    if p.N % nth == 0:
        return p.K <= MAX_CHANNELS and p.C >= WHOLE_MIN_IN
    return p.P * p.Q >= MIN_PIXELS and p.K <= MAX_CHANNELS


class PwCache:
    """Packed weights per weight array (a plan packs each array once, for all the input
    shapes it compiles)."""

    def __init__(self):
        self._packed = {}

    def get(self, w):
        key = id(w)
        hit = self._packed.get(key)
        if hit is None or hit[0] is not w:
            hit = (w, K.PwWeights(w))
            self._packed[key] = hit
        return hit[1]
