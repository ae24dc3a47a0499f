"""The test suite's own rules: a child Python never starts in the working directory of
the test run (from a source checkout, ``python -c`` / ``-m`` would import the unbuilt
tree instead of the fastconv under test)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
_SPAWN = {"run", "Popen", "check_output", "check_call", "call"}


def _starts_python(call):
    """True when ``call`` is subprocess.<spawn>([sys.executable, ...], ...)."""
    f = call.func
    if not (isinstance(f, ast.Attribute) and f.attr in _SPAWN and call.args):
        return False
    first = call.args[0]
    return (isinstance(first, ast.List) and first.elts
            and ast.unparse(first.elts[0]) == "sys.executable")


def test_every_child_python_names_its_working_directory():
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _starts_python(node):
                if not any(k.arg == "cwd" for k in node.keywords):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, ("start child Pythons with conftest.run_python (or pass cwd= a "
                           "scratch folder): " + ", ".join(offenders))
