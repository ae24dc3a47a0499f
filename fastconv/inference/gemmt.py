"""The plan's "gemmt" convolutions: outputs of few pixels as the transposed product.

In NCHW a GEMM convolution is Y[K, P*Q] = W[K, C*R*S] . cols[C*R*S, P*Q]. When an
image has few output pixels (resnet18's 7x7 and 14x14 stages, MobileNetV2's last
1x1 convs at batch 1) the GEMM's 32-wide column tiles fit P*Q badly (49 pixels:
15 of 64 columns wasted) and the weights, by far the larger operand, are packed
again at every call. A "gemmt" conv computes Y^T[P*Q, K] = cols^T . W^T instead
(csrc/conv_gemmt.h): the pixels fill the micro-kernel's 14-row panels, the output
channels its columns, and the weights are packed into the GEMM's panels once,
here, when the plan is built (:class:`fastconv._kernels.GemmtWeights`). Every
output is the same multiply-add chain as the GEMM conv's, so the results are
bitwise those of algo "gemm" (the executor falls back to it when the ISA level
changed after packing).
"""

from __future__ import annotations

from .. import _kernels as K
from .pointwise import pw_ok

__all__ = ["gemmt_ok", "gemmt_pays", "gemmt_pxsplit_pays", "gemmt_kalign", "GemmtCache"]

#: The auto rule (gemmt_pays): images of at most SMALL_PIXELS output pixels with at
#: least SMALL_DEPTH = C*R*S, or of at most MAX_PIXELS with at least MIN_DEPTH; always
#: at least MIN_CHANNELS output channels, and a thread's share of them (whole panels)
#: at most MAX_IMBALANCE times the GEMM conv's share.
SMALL_PIXELS = 64
SMALL_DEPTH = 128
MAX_PIXELS = 196
MIN_DEPTH = 1024
MIN_CHANNELS = 64
MAX_IMBALANCE = 1.05


def gemmt_ok(p):
    """The gemmt path can run ``p`` (a conv geometry): not grouped."""
    return p.groups == 1


def gemmt_pays(p, nr, share, nth):
    """The auto rule for a conv the policy runs as "gemm" (``nr``: the panel width of the
    GEMM kernel now, ``share``: the GEMM conv's channels per thread, ``nth`` threads).
    Measured per op (float32, 2 threads, batch 1, gemmt / gemm time of one conv layer
    interleaved in one process, AVX-512): at 7x7 output 0.63-0.81x (512->512 3x3 0.63x,
    256->512 3x3 s2 0.65x, 960->320 1x1 0.69x, 320->1280 1x1 0.71x, 160->960 1x1 0.81x);
    at 13x13 / 14x14 0.88-0.89x with depth >= 1024 (256->256 3x3, 128->256 3x3 s2), but
    with less 0.92-1.22x alone (576->96 1x1 0.92x, 512->1000 1x1 0.94x, 64->256 3x3
    1.01x, 96->576 1x1 1.14x, 64->384 1x1 1.22x: the output transpose weighs more than
    the packing saved) and 1.05-1.4x inside mobilenet_v2 / squeezenet1_1; 28x28
    0.98-0.99x. Channel counts that do not split into equal whole panels over the
    threads (160 or 96 channels in 32-wide panels on 2 threads) lost inside
    mobilenet_v2 at batch 1, where an image's channels are shared out; at a batch that
    divides over the threads (whole images per thread) they win: batch 8, per-op
    profile, gemmt / gemm 0.82x on 576 -> 160 and 0.77x on 960 -> 160 at 7x7."""
    if not gemmt_ok(p) or p.K < MIN_CHANNELS:
        return False
    if p.N % max(1, nth) != 0 and _share(p.K, nr, nth) > MAX_IMBALANCE * share:
        return False        # images cut into channel shares: the panels must split evenly
    return _size_pays(p)


def gemmt_pxsplit_pays(p, nr, share, nth, fused_pool=False):
    """The rule for a conv that :func:`gemmt_pays` turned down only because its output
    channels do not split into equal whole panels over the threads while its images are
    cut into shares (960 -> 160 at 7x7, batch 1, 2 threads: 3 panels against 2): run it
    as gemmt with each image cut by output pixels instead (whole 14-row panels of the
    product, every channel; the executor's ``pxsplit``, the same bits). Only the convs the
    pointwise kernel could take (:func:`.pointwise.pw_ok`: 1x1, stride 1, unpadded, no
    fused pool; no input slab, which every part would rebuild), and at least 8 output
    pixels per thread."""
    if not pw_ok(p, fused_pool) or nth < 2 or p.N % nth == 0 or p.K < MIN_CHANNELS:
        return False
    if _share(p.K, nr, nth) <= MAX_IMBALANCE * share or p.P * p.Q < 8 * nth:
        return False            # the channel split is even: gemmt_pays decides
    return _size_pays(p)


def _size_pays(p):
    """The size part of the rule: at most SMALL_PIXELS output pixels per image with a
    depth C*R*S of at least SMALL_DEPTH, or at most MAX_PIXELS with at least MIN_DEPTH."""
    pixels, depth = p.P * p.Q, p.C * p.R * p.S
    if pixels <= SMALL_PIXELS:
        return depth >= SMALL_DEPTH
    return pixels <= MAX_PIXELS and depth >= MIN_DEPTH


def _share(K, nr, nth):
    """Channels of the largest share of K split over nth threads in whole nr-wide panels."""
    panels = -(-K // nr)
    return min(K, nr * -(-panels // max(1, nth)))


def gemmt_kalign(p, packed, nth):
    """Output channels per share of an image (the executor's units at batch 1): whole
    panels of the packed weights (``packed.nr`` channels), one share per thread."""
    return _share(p.K, packed.nr, nth)


class GemmtCache:
    """Packed weights per weight array (a plan packs each array once, for all the input
    shapes it compiles), repacked when the GEMM kernel (the ISA level) has changed."""

    def __init__(self):
        self._packed = {}

    def get(self, w):
        key = id(w)
        hit = self._packed.get(key)
        now = K.GemmtWeights.kernel_now(w.dtype.itemsize)
        if hit is None or hit[0] is not w or hit[1].kernel != now:
            hit = (w, K.GemmtWeights(w))
            self._packed[key] = hit
        return hit[1]
