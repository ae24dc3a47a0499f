"""The package's layering (DESIGN.md, "The house"): each module imports only modules of
its own layer or below, at module level or inside a function, and no import circle
exists anywhere.

Three checks:

* every module, imported alone in a fresh interpreter, loads no fastconv module of a
  higher layer (read from ``sys.modules``). The package itself
  (``fastconv/__init__.py``) is the top floor, the front door that gathers the
  public names, and no module imports it; so modules are imported under a bare
  ``fastconv`` package whose ``__init__`` does not run, and what they pull in
  themselves is what is seen;
* no function body imports a fastconv module (``import``, ``from ... import``, or
  ``importlib.import_module`` / ``__import__`` of a literal fastconv name): an import
  hidden in a function is how a circle hides, and a function that needs a higher
  layer sits in the wrong module;
* the module-level imports between fastconv modules form no circle.
"""

from __future__ import annotations

import ast
import json
import pkgutil
from pathlib import Path

import pytest

import fastconv
from conftest import run_python

PKG_DIR = Path(fastconv.__file__).resolve().parent

#: The layers, lowest first: a module may import modules of its own layer and of the
#: layers before it. An entry covers the module of that name and, for a package, every
#: module inside it (the longest matching entry wins). "fastconv" is the package's own
#: ``__init__``: the public function API. Names that do not exist yet are the target
#: layout's (DESIGN.md); a module that matches no entry fails the test until it is placed.
LAYERS = [
    ("kernels", ["fastconv._kernels"]),
    ("core", ["fastconv._version", "fastconv._env", "fastconv._fileio", "fastconv._args", "fastconv._runtime",
              "fastconv._timing", "fastconv._tunetable", "fastconv._dispatch"]),
    ("ops", ["fastconv.functional", "fastconv.reference", "fastconv._numpy_baseline",
             "fastconv.functional_convpass", "fastconv.functional_prepared",
             "fastconv.functional_conv_transpose", "fastconv.reference_conv_transpose",
             "fastconv.functional_adaptive_pool", "fastconv.reference_adaptive_pool",
             "fastconv.functional_lp_pool", "fastconv.reference_lp_pool",
             "fastconv.functional_batchnorm", "fastconv.reference_batchnorm",
             "fastconv.functional_conv1d", "fastconv.reference_conv1d",
             "fastconv.functional_deform", "fastconv.reference_deform",
             "fastconv.qfunctional", "fastconv.qreference"]),
    ("api", ["fastconv._backend", "fastconv._config"]),
    ("layers", ["fastconv.nn"]),
    ("models", ["fastconv.models", "fastconv.optim"]),
    ("apps", ["fastconv.train", "fastconv._trainchecks", "fastconv.data", "fastconv.plotting", "fastconv.checkpoint",
              "fastconv.callbacks", "fastconv.inference", "fastconv.compile", "fastconv.onnx",
              "fastconv.quantize", "fastconv.prune", "fastconv.distributed", "fastconv.binarize",
              "fastconv.qlayers", "fastconv.compressed_io"]),
    ("tools", ["fastconv.tune", "fastconv.bench", "fastconv.selftest"]),
    ("cli", ["fastconv.cli", "fastconv.commands", "fastconv.__main__"]),
    # the package itself: the front door, gathering public names from every floor
    ("facade", ["fastconv"]),
]

#: Modules of one layer that must still not load each other (name -> forbidden prefixes).
MUST_NOT_LOAD = {
    "fastconv.tune": ["fastconv.bench"],     # tune times through fastconv._timing
}

#: Optional third-party packages no fastconv module may import when it is imported.
OPTIONAL = ["torch", "mpi4py"]

_RANK = {entry: i for i, (_, entries) in enumerate(LAYERS) for entry in entries}


def layer(name):
    """Index in LAYERS of module ``name``, or None when no entry covers it."""
    if name == "fastconv":
        return _RANK["fastconv"]
    best = None
    for entry in _RANK:
        if entry != "fastconv" and (name == entry or name.startswith(entry + ".")):
            if best is None or len(entry) > len(best):
                best = entry
    return None if best is None else _RANK[best]


def layer_name(name):
    i = layer(name)
    return "no layer" if i is None else LAYERS[i][0]


def _modules():
    names = ["fastconv"]
    for info in pkgutil.walk_packages([str(PKG_DIR)], prefix="fastconv."):
        names.append(info.name)
    return sorted(set(names))


MODULES = _modules()

CHILD = r"""
import importlib, importlib.util, json, sys
name, bare = sys.argv[1], sys.argv[2] == "bare"
if bare:
    # the package object without running its __init__: only what `name` imports loads
    spec = importlib.util.find_spec("fastconv")
    sys.modules["fastconv"] = importlib.util.module_from_spec(spec)
importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_layer_table_is_consistent():
    entries = [e for _, es in LAYERS for e in es]
    assert len(entries) == len(set(entries))
    assert layer("fastconv.nn.layers") == layer("fastconv.nn") > layer("fastconv._backend")
    assert layer("fastconv.bench.cli") == layer("fastconv.tune") < layer("fastconv.cli")
    assert layer("fastconv.nonexistent") is None
    for name in ("fastconv._dispatch", "fastconv._tunetable", "fastconv.tune", "fastconv.bench",
                 "fastconv.bench.runner", "fastconv._timing", "fastconv._version"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_importing_a_module_loads_nothing_above_its_layer(name):
    mine = layer(name)
    assert mine is not None, f"{name} is in no layer: add it to LAYERS in {__file__}"
    bare = mine < layer("fastconv")
    res = run_python(["-c", CHILD, name, "bare" if bare else "package"])
    assert res.returncode == 0, f"importing {name} failed:\n{res.stderr}"
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    ours = [m for m in loaded if m.startswith("fastconv.") or (m == "fastconv" and not bare)]
    above = [f"{m} ({layer_name(m)})" for m in ours if layer(m) is None or layer(m) > mine]
    assert not above, f"importing {name} ({layer_name(name)}) loads higher layers: {', '.join(above)}"
    banned = [m for m in ours for bad in MUST_NOT_LOAD.get(name, ())
              if m == bad or m.startswith(bad + ".")]
    assert not banned, f"importing {name} loads {', '.join(banned)}"
    optional = [p for p in OPTIONAL if p in loaded]
    assert not optional, f"importing {name} imports the optional {', '.join(optional)}"


# ------------------------------------------------------------------ static checks


def _source_modules():
    """{dotted name: path} of every .py file of the package."""
    out = {}
    for path in sorted(PKG_DIR.rglob("*.py")):
        rel = path.relative_to(PKG_DIR.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


SOURCES = _source_modules()


def _is_module(name):
    return name in SOURCES or name in MODULES


def _targets(node, module, is_package):
    """The fastconv modules an import statement ``node`` in ``module`` names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "fastconv" or a.name.startswith("fastconv.")]
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        base = ".".join(base + ([node.module] if node.module else []))
    elif node.module == "fastconv" or (node.module or "").startswith("fastconv."):
        base = node.module
    else:
        return []
    subs = [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
    # "from pkg import attr" needs pkg itself; "from pkg import submodule" needs the submodule
    return subs if len(subs) == len(node.names) else [base] + subs


def _dynamic_target(call):
    """The fastconv name a literal ``importlib.import_module`` / ``__import__`` call loads."""
    f = call.func
    fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
    if fname not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        if arg.value == "fastconv" or arg.value.startswith(("fastconv.", ".")):
            return arg.value
        return None
    return "<computed name>"  # cannot be told apart from a fastconv import: reported


class _Imports(ast.NodeVisitor):
    """Module-level fastconv imports (edges) and fastconv imports inside functions."""

    def __init__(self, module, is_package):
        self.module, self.is_package = module, is_package
        self.edges, self.in_function = set(), []
        self._func = []

    def _visit_func(self, node):
        self._func.append(node.name)
        self.generic_visit(node)
        self._func.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_func

    def visit_Lambda(self, node):
        self._func.append("<lambda>")
        self.generic_visit(node)
        self._func.pop()

    def _visit_import(self, node):
        targets = _targets(node, self.module, self.is_package)
        if targets and self._func:
            self.in_function.append((node.lineno, self._func[-1], ast.unparse(node)))
        elif targets:
            self.edges.update(t for t in targets if t != self.module)

    visit_Import = visit_ImportFrom = _visit_import

    def visit_Call(self, node):
        target = _dynamic_target(node)
        if target is not None and self._func:
            self.in_function.append((node.lineno, self._func[-1], ast.unparse(node)))
        self.generic_visit(node)


def _scan():
    found = {}
    for name, path in SOURCES.items():
        v = _Imports(name, path.name == "__init__.py")
        v.visit(ast.parse(path.read_text(), str(path)))
        found[name] = v
    return found


SCAN = _scan()


#: The one import inside a function that the house allows: the package's front door
#: (``fastconv/__init__.py``, the top floor, imported by no module of the package)
#: loads its heavier submodules on first use of the attribute (PEP 562), downward.
ALLOWED_IN_FUNCTION = {("fastconv", "__getattr__")}


def test_no_function_imports_a_fastconv_module():
    offenders = [f"{SOURCES[name].relative_to(PKG_DIR.parent)}:{line} (in {func}): {text}"
                 for name, v in sorted(SCAN.items()) for line, func, text in v.in_function
                 if (name, func) not in ALLOWED_IN_FUNCTION]
    assert not offenders, (f"{len(offenders)} imports of fastconv modules inside functions "
                           "(import at module level, or move the code to a higher layer):\n"
                           + "\n".join(offenders))


def test_module_level_imports_form_no_circle():
    graph = {name: sorted(e for e in v.edges if e in SOURCES) for name, v in SCAN.items()}
    state, stack, circles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in graph.get(n, ()):
            if state.get(m) == "open":
                circles.append(" -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_module_level_imports_respect_the_layers():
    """The static twin of the subprocess check: it names the import line's module."""
    bad = [f"{name} ({layer_name(name)}) imports {t} ({layer_name(t)})"
           for name, v in sorted(SCAN.items()) if layer(name) is not None
           for t in sorted(v.edges) if layer(t) is None or layer(t) > layer(name)]
    assert not bad, "\n".join(bad)


def test_the_front_door_reaches_every_floor():
    """``import fastconv`` then ``fastconv.nn`` / ``.optim`` / ``.models`` (loaded with it)
    and the application modules (loaded on first use) all work, and ``dir()`` shows them."""
    res = run_python(["-c", "import fastconv, sys; "
                      "print(all(m in sys.modules for m in "
                      "('fastconv.nn', 'fastconv.optim', 'fastconv.models'))); "
                      "print('fastconv.train' in sys.modules); "
                      "fastconv.train.Trainer; fastconv.data.shapes; fastconv.tune.lookup; "
                      "print('fastconv.train' in sys.modules); "
                      "print(all(n in dir(fastconv) for n in ('nn', 'train', 'data', 'bench', "
                      "'use_backend', 'get_backend')))"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "False", "True", "True"]
    for name in fastconv._LAZY_SUBMODULES:
        assert getattr(fastconv, name).__name__ == f"fastconv.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        fastconv.nonexistent

