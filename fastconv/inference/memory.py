"""Buffer planning: one arena per input shape, buffers reused when lifetimes allow.

Each intermediate value (and each op's scratch: a fused conv's pre-pool
output) lives from the op that writes it to the last op that reads
it, both included, so an op's output never shares memory with its inputs.
Values are placed greedily, largest first, at the lowest offset that overlaps
no placed value whose lifetime meets its own (the usual offset assignment
heuristic of inference runtimes); every offset is a multiple of 64 bytes.
"""

from __future__ import annotations

__all__ = ["plan_arena"]

ALIGN_BYTES = 64


def plan_arena(intervals, itemsize):
    """``intervals``: {name: (first_op, last_op, elements)}. Returns ({name: offset in
    elements}, arena size in elements)."""
    align = ALIGN_BYTES // itemsize
    order = sorted(intervals, key=lambda k: (-intervals[k][2], intervals[k][0], k))
    placed = []          # (offset, end, first, last)
    offsets = {}
    total = 0
    for name in order:
        first, last, size = intervals[name]
        size = max(1, -(-size // align) * align)
        busy = sorted((o, e) for o, e, f, l in placed if not (l < first or last < f))
        off = 0
        for o, e in busy:
            if off + size <= o:
                break
            off = max(off, e)
        offsets[name] = off
        placed.append((off, off + size, first, last))
        total = max(total, off + size)
    return offsets, total
