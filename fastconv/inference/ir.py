"""The plan's intermediate representation: nodes over named values.

A :class:`Graph` is a list of :class:`Node` in execution order; each node reads
named values and writes one. Lowering (:mod:`.lower`) turns a network of
``fastconv.nn`` modules into this form, fusion (:mod:`.fuse`) rewrites it, and
:mod:`.plan` schedules it into the C executor's op array. Nothing here depends
on the container that produced it, so a general DAG container (``nn.Graph``,
ONNX import) can lower to the same IR.

Node ops (``attrs`` in brackets):

``check``      no computation: the model's input checks at this point [module,
               ndim, channels]; dropped after shape inference
``conv``       [w, b, stride, padding, dilation, groups, module]
``linear``     [w, b, module]
``bn``         eval-mode batch norm [scale, shift] (y = x * scale + shift per channel)
``act``        [kind: relu | leaky_relu | clip | sigmoid | tanh, a, b]
``maxpool``, ``avgpool``  [kernel, stride, padding, dilation, ceil_mode, count_include_pad]
``gap``        global average pool (N, C, H, W) -> (N, C)
``flatten``    (N, ...) -> (N, prod): a view, no copy
``identity``   a view (Dropout in eval mode)
``view``       [shape] a reshape, a view (0 in shape: that input axis, -1: inferred)
``add``        elementwise sum of two values of one shape (a residual)
``concat``     [axis] joins its inputs

After fusion a ``conv``/``linear``/pool/``gap`` node may carry ``epi``: a list
of epilogue steps (``("affine", scale, shift)``, ``("add", value)``,
``("act", kind, a, b)``) applied right after it, and a ``conv`` may carry
``pool``: the pooling node fused after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    op: str
    inputs: list
    output: str
    attrs: dict = field(default_factory=dict)

    def __repr__(self):
        extra = ""
        if self.attrs.get("epi"):
            extra += " epi=" + ",".join(str(s[0] if s[0] != "act" else s[1]) for s in self.attrs["epi"])
        if self.attrs.get("pool") is not None:
            extra += " +" + self.attrs["pool"].op
        return f"{self.output} = {self.op}({', '.join(self.inputs)}){extra}"


@dataclass
class Graph:
    """Nodes in execution order; ``input`` and ``output`` name the network's values."""

    dtype: object
    input: str = "x"
    output: str = "x"
    nodes: list = field(default_factory=list)
    _count: int = 0

    def value(self, hint="v"):
        """A fresh value name."""
        self._count += 1
        return f"{hint}{self._count}"

    def add(self, op, inputs, attrs=None, hint=None):
        """Append a node; returns its output's name."""
        out = self.value(hint or op)
        self.nodes.append(Node(op, list(inputs), out, dict(attrs or {})))
        return out

    def consumers(self):
        """value name -> list of nodes that read it (the network output counts as a reader)."""
        users = {}
        for n in self.nodes:
            for v in n.inputs:
                users.setdefault(v, []).append(n)
            for step in n.attrs.get("epi", ()):
                if step[0] == "add":
                    users.setdefault(step[1], []).append(n)
        users.setdefault(self.output, []).append(None)
        return users

    def __repr__(self):
        lines = [f"graph({self.input}) -> {self.output} [{self.dtype}]"]
        lines += ["  " + repr(n) for n in self.nodes]
        return "\n".join(lines)
