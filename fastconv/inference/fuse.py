"""Fusion on the IR (shape independent): BatchNorm folding, epilogues, pools.

Rules, in this order:

1. **BatchNorm folding.** A ``bn`` whose input comes from a ``conv`` or
   ``linear`` that nothing else reads is folded into it: w' = w * scale[k],
   b' = b * scale[k] + shift[k], computed in float64 and cast once. Any other
   ``bn`` (after the input, a pool, an add, a concat) stays an elementwise
   ``affine`` step.
2. **Epilogues.** An elementwise node (``bn`` left over, ``act``, ``add``) whose
   operand is produced by a ``conv``, ``linear``, pool, ``gap`` or elementwise
   node that nothing else reads is appended to that producer's epilogue, which
   the executor runs on each share of the output right after computing it. An
   ``add`` (Residual) takes the other operand as a source; the producer is then
   scheduled where the ``add`` was, after the shortcut branch. So a ResNet
   block's last conv + BN + residual add + ReLU is one step. An elementwise
   node that finds no producer becomes a standalone ``eltwise`` node (steps
   that follow it join it).
3. **Pools.** A ``maxpool`` / ``avgpool`` whose input comes from a ``conv`` that
   nothing else reads runs inside the
   conv's step, on each thread's share of channels right after the conv's
   epilogue, unless the pool has an epilogue of its own (``fuse_pool=False``
   turns this off).

``identity`` nodes are removed first (their readers read the input); ``flatten``
stays a node, a view that costs nothing at run time.
"""

from __future__ import annotations

import numpy as np

from .ir import Graph, Node

__all__ = ["fuse"]

_PRODUCERS = ("conv", "linear", "maxpool", "avgpool", "gap", "eltwise")
_ELTWISE = ("bn", "act", "add")


def fuse(graph, fuse_pool=True):
    """A fused copy of ``graph`` (check nodes dropped; arrays shared, not copied)."""
    g = Graph(graph.dtype, graph.input, graph.output)
    g._count = graph._count
    g.nodes = [Node(n.op, list(n.inputs), n.output, dict(n.attrs, orig=n.output))
               for n in graph.nodes if n.op != "check"]
    _drop_identities(g)
    _fold_bn(g)
    _epilogues(g)
    if fuse_pool:
        _pools(g)
    return g


def _drop_identities(g):
    """Identity nodes (eval-mode Dropout) vanish: their readers read the input."""
    for n in [n for n in g.nodes if n.op == "identity"]:
        src = n.inputs[0]
        g.nodes.remove(n)
        for m in g.nodes:
            m.inputs = [src if v == n.output else v for v in m.inputs]
        if g.output == n.output:
            g.output = src


def _single_reader(g, value, reader):
    users = g.consumers().get(value, [])
    return value != g.output and len(users) == 1 and users[0] is reader


def _producer(g, value):
    for n in g.nodes:
        if n.output == value:
            return n
    return None


def _fold_bn(g):
    for bn in [n for n in g.nodes if n.op == "bn"]:
        p = _producer(g, bn.inputs[0])
        if p is None or p.op not in ("conv", "linear") or not _single_reader(g, p.output, bn):
            continue
        scale, shift = bn.attrs["scale"], bn.attrs["shift"]
        w = p.attrs["w"]
        p.attrs["w"] = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b = p.attrs["b"]
        p.attrs["b"] = (np.zeros_like(scale) if b is None else b) * scale + shift
        p.attrs["folded"] = p.attrs.get("folded", ()) + (bn.attrs.get("name"),)
        p.output = bn.output
        g.nodes.remove(bn)


def _step(node, other=None):
    if node.op == "bn":
        return ("affine", node.attrs["scale"], node.attrs["shift"])
    if node.op == "act":
        return ("act", node.attrs["kind"], node.attrs["a"], node.attrs["b"])
    return ("add", other)


def _epilogues(g):
    i = 0
    while i < len(g.nodes):
        n = g.nodes[i]
        if n.op not in _ELTWISE:
            i += 1
            continue
        candidates = [(n.inputs[0], n.inputs[1] if n.op == "add" else None)]
        if n.op == "add":
            # prefer the operand computed last (the body of a residual block)
            candidates.append((n.inputs[1], n.inputs[0]))
            pos = {v.output: j for j, v in enumerate(g.nodes)}
            candidates.sort(key=lambda c: -pos.get(c[0], -1))
        fused = False
        for v, other in candidates:
            p = _producer(g, v)
            if p is None or p.op not in _PRODUCERS or p.attrs.get("pool") is not None:
                continue
            if not _single_reader(g, v, n) or (other is not None and other == v):
                continue
            p.attrs["epi"] = list(p.attrs.get("epi", ())) + [_step(n, other)]
            p.output = n.output
            # the producer now runs where n was (after the other operand exists)
            g.nodes.remove(p)
            j = g.nodes.index(n)
            g.nodes[j] = p
            fused = True
            i = j + 1
            break
        if not fused:
            other = n.inputs[1] if n.op == "add" else None
            g.nodes[i] = Node("eltwise", [n.inputs[0]], n.output, {"epi": [_step(n, other)]})
            i += 1


def _pools(g):
    for q in [n for n in g.nodes if n.op in ("maxpool", "avgpool")]:
        p = _producer(g, q.inputs[0])
        if p is None or p.op != "conv" or q.attrs.get("epi") or p.attrs.get("pool") is not None:
            continue
        if not _single_reader(g, p.output, q):
            continue
        p.attrs["pool"] = q
        p.attrs["pre"] = p.output      # the conv's own output: a scratch buffer now
        p.output = q.output
        g.nodes.remove(p)
        g.nodes[g.nodes.index(q)] = p
