"""Graph: a container for any directed acyclic network of layers.

A :class:`Sequential` is a chain; :class:`Residual` and :class:`Concat` are two
fixed shapes of branching. A Graph wires layers by *value names*: each node is
``(module, input names, output names)``; the graph has named inputs and
outputs. Example (a residual block whose skip joins through an explicit Add)::

    g = nn.Graph(inputs="x", outputs="y", nodes=[
        ("conv", nn.Conv2D(8, 8, 3, padding=1), ["x"], ["h"]),
        ("relu", nn.ReLU(), ["h"], ["r"]),
        ("add", nn.Add(), ["r", "x"], ["y"]),
    ])
    y = g.forward(x)
    dx = g.backward(dy)

A node calls ``module.forward(*inputs)``; a module with several outputs
(:class:`Split`) returns a tuple. ``backward`` runs the nodes in reverse order;
a value used by several nodes (fan-out) gets the sum of their gradients, and a
node none of whose outputs reaches a graph output is skipped. With one input
and one output a Graph is called like any layer (``forward(x)``,
``backward(dy)``), so the Trainer fine-tunes it; otherwise ``forward(*xs)``
returns a tuple of outputs and ``backward(*dys)`` a tuple of input gradients.

The nodes may be given in any order (they are sorted topologically, keeping the
given order among independent nodes); a cycle, an undefined value, a value
defined twice or a module used by two nodes is a ValueError. Node names (the
first item of a 4-tuple; ``"0"``, ``"1"``, ... otherwise) name the children in
``state_dict``. ``input_grad`` is routed as in Sequential: a node computes its
input gradient only when some graph input (with ``input_grad``) or trainable
parameter lies upstream of it.
"""

from __future__ import annotations

import heapq

import numpy as np

from .._backend import plain_native
from .containers import _container_dtype, _runs_backward
from .module import Module, fresh_output, inplace_forward

__all__ = ["Graph"]


def _names(value, what):
    if isinstance(value, str):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{what} must be a name or a list of names, got {value!r}") from None
    for v in items:
        if not isinstance(v, str) or not v:
            raise TypeError(f"{what} must hold non-empty str names, got {v!r}")
    return tuple(items)


def _parse_nodes(nodes):
    out = []
    for i, node in enumerate(nodes):
        if not isinstance(node, (tuple, list)) or len(node) not in (3, 4):
            raise TypeError(
                f"nodes[{i}] must be (module, inputs, outputs) or (name, module, inputs, outputs), got {node!r}"
            )
        name, module, ins, outs = node if len(node) == 4 else (str(i), *node)
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"nodes[{i}]: a node name must be a non-empty str without '.', got {name!r}")
        ins = _names(ins, f"nodes[{i}] ({name}) inputs")
        outs = _names(outs, f"nodes[{i}] ({name}) outputs")
        if not outs:
            raise ValueError(f"node {name!r} must have at least one output")
        out.append((name, module, ins, outs))
    return out


def _toposort(inputs, nodes):
    """The nodes in a topological order, stable with respect to the given order."""
    producer = {}
    for k, (name, _, _, outs) in enumerate(nodes):
        for o in outs:
            if o in producer or o in inputs:
                raise ValueError(f"value {o!r} is defined twice (by node {name!r})")
            producer[o] = k
    deps = []
    users = [[] for _ in nodes]
    for k, (name, _, ins, _) in enumerate(nodes):
        d = set()
        for v in ins:
            if v in inputs:
                continue
            if v not in producer:
                raise ValueError(f"node {name!r} reads {v!r}, which no graph input or node defines")
            d.add(producer[v])
        deps.append(len(d))
        for p in d:
            users[p].append(k)
    ready = [k for k, n in enumerate(deps) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(nodes[k])
        for u in users[k]:
            deps[u] -= 1
            if deps[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[k][0] for k, n in enumerate(deps) if n > 0]
        raise ValueError(f"the graph has a cycle through nodes {stuck}")
    return order


def _handover(wiring, outputs):
    """For each node (in ``wiring``'s order): the name of the node whose output is its only
    input when that value feeds nothing else (one use, not a graph output) and is that
    node's only output; else None. Such an input may be overwritten by the node."""
    uses = {}
    for _, ins, _ in wiring:
        for v in ins:
            uses[v] = uses.get(v, 0) + 1
    producer = {outs[0]: name for name, _, outs in wiring if len(outs) == 1}
    return tuple(
        producer.get(ins[0]) if len(ins) == 1 and uses[ins[0]] == 1 and ins[0] not in outputs else None
        for _, ins, _ in wiring
    )


class Graph(Module):
    """A directed acyclic network of layers wired by value names (see the module docstring).

    ``inputs``, ``outputs``: a name or a list of names. ``nodes``: a list of
    ``(module, inputs, outputs)`` or ``(name, module, inputs, outputs)``.
    ``dtype`` and ``seed`` as for :class:`Sequential`.
    """

    def __init__(self, inputs, outputs, nodes, *, dtype=None, seed=None):
        inputs = _names(inputs, "inputs")
        outputs = _names(outputs, "outputs")
        if not inputs:
            raise ValueError("a Graph needs at least one input")
        if not outputs:
            raise ValueError("a Graph needs at least one output")
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"graph input names must be distinct, got {list(inputs)}")
        parsed = _parse_nodes(nodes)
        dt = _container_dtype("node", [(n, m) for n, m, _, _ in parsed], dtype)
        super().__init__(dt, seed)
        self.__dict__["inputs"] = inputs
        self.__dict__["outputs"] = outputs
        seen_names, seen_modules = set(), {}
        for name, module, _, _ in parsed:
            if name in seen_names:
                raise ValueError(f"two nodes are called {name!r}")
            if hasattr(type(self), name) or name in self.__dict__:
                raise ValueError(f"node name {name!r} clashes with an attribute of Graph; rename the node")
            if id(module) in seen_modules:
                raise ValueError(
                    f"nodes {seen_modules[id(module)]!r} and {name!r} use the same module object; "
                    "each node needs its own (a layer caches its own forward pass)"
                )
            seen_names.add(name)
            seen_modules[id(module)] = name
        ordered = _toposort(set(inputs), parsed)
        defined = set(inputs) | {o for _, _, _, outs in parsed for o in outs}
        for o in outputs:
            if o not in defined:
                raise ValueError(f"graph output {o!r} is not a graph input or a node output")
        for name, module, _, _ in ordered:
            self.add_module(name, module)
        self.__dict__["_wiring"] = tuple((name, ins, outs) for name, _, ins, outs in ordered)
        self.__dict__["_handover"] = _handover(self._wiring, outputs)
        if dtype is not None:
            self.to(dt)
        if seed is not None:
            self.reset_parameters(seed)
        self._shapes = None

    @property
    def nodes(self):
        """The nodes in execution order, as ``(name, module, inputs, outputs)`` tuples."""
        return [(name, self._modules[name], ins, outs) for name, ins, outs in self._wiring]

    def _route_input_grad(self):
        """Set each node's ``input_grad``; return which values need a gradient."""
        need = {v: bool(self.input_grad) for v in self.inputs}
        for name, ins, outs in self._wiring:
            m = self._modules[name]
            m.input_grad = any(need[v] for v in ins)
            flows = m.input_grad or m.has_trainable()
            for o in outs:
                need[o] = flows
        return need

    def forward(self, *xs):
        """Run the nodes in dependency order on the inputs (one array per name in
        ``inputs``); returns the output, or a tuple when there are several.

        In eval mode on the native backend, an activation that can (ReLU, Clip/ReLU6)
        writes its result over its input when that is the output of a node that hands it
        over (:func:`.module.fresh_output`) and no other node nor the graph's outputs read
        it, as :meth:`Sequential.forward` does."""
        if len(xs) != len(self.inputs):
            raise TypeError(f"Graph.forward takes {len(self.inputs)} input(s) {list(self.inputs)}, got {len(xs)}")
        env = {}
        for name, x in zip(self.inputs, xs):
            env[name] = self._check_input(x, what=name)
        modules = self._modules
        if self.training:
            self._route_input_grad()
            handover = (None,) * len(self._wiring)
        else:
            # backward routes input_grad itself; no node's forward reads it
            handover = self._handover if plain_native() else (None,) * len(self._wiring)
        for (name, ins, outs), src in zip(self._wiring, handover):
            m = modules[name]
            run = inplace_forward(m) if src is not None and fresh_output(modules[src]) else None
            y = m.forward(*[env[v] for v in ins]) if run is None else run(env[ins[0]])
            ys = (y,) if len(outs) == 1 else y
            if not isinstance(ys, (tuple, list)) or len(ys) != len(outs):
                raise ValueError(f"node {name!r} must return {len(outs)} outputs, got {type(y).__name__}")
            env.update(zip(outs, ys))
        self._shapes = {k: v.shape for k, v in env.items()}
        res = tuple(env[o] for o in self.outputs)
        return res[0] if len(res) == 1 else res

    def backward(self, *dys):
        """Given one gradient per output, run the nodes' backward in reverse order,
        summing the gradients of a value that feeds several nodes; returns dL/dx (a tuple
        for several inputs)."""
        if self._shapes is None:
            raise self._no_forward()
        if len(dys) != len(self.outputs):
            raise TypeError(f"Graph.backward takes {len(self.outputs)} gradient(s), got {len(dys)}")
        grads = {}

        def add(v, g):
            grads[v] = g if v not in grads else grads[v] + g

        for o, dy in zip(self.outputs, dys):
            if dy is not None:
                add(o, self._check_grad(dy, self._shapes[o], what=f"the gradient of {o!r}"))
        need = self._route_input_grad()
        for name, ins, outs in reversed(self._wiring):
            m = self._modules[name]
            gs = [grads.pop(o, None) for o in outs]
            if not _runs_backward(m) or all(g is None for g in gs):
                continue
            if len(outs) == 1:
                r = m.backward(gs[0])
            else:
                r = m.backward(*[np.zeros(self._shapes[o], self.dtype) if g is None else g
                                 for o, g in zip(outs, gs)])
            if not m.input_grad:
                continue
            rs = (r,) if len(ins) == 1 else r
            for v, g in zip(ins, rs):
                if g is not None and need[v]:
                    add(v, g)
        if not self.input_grad:
            return None
        res = tuple(grads[v] if v in grads else np.zeros(self._shapes[v], self.dtype) for v in self.inputs)
        return res[0] if len(res) == 1 else res

    def extra_repr(self):
        return f"inputs={list(self.inputs)}, outputs={list(self.outputs)}"

    def __repr__(self):
        lines = [f"Graph({self._args_repr()}"]
        for name, ins, outs in self._wiring:
            sub = repr(self._modules[name]).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}  [{', '.join(ins)}] -> [{', '.join(outs)}]")
        lines.append(")")
        return "\n".join(lines)
