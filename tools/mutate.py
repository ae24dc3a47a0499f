#!/usr/bin/env python
"""Mutation harness: does the test suite fail when fastconv is wrong?

Each mutation replaces one function, kernel binding or method by a plausible wrong
version (a gradient 1% too large, a missing output channel, a shape rule off by one,
inputs written before an error is raised...), by monkeypatching at run time: no
source file is edited. The catalogue is tools/mutations.py; the registry and the
patching helpers it is written with are tools/mutate_registry.py. The harness runs the test files that should notice it, with
the mutation applied, and reports which mutations were caught (the run failed), which
survived (it passed) and how often the mutated code actually changed a result (a
mutation that survives with 0 hits was never reached by those tests).

    python tools/mutate.py                    # every mutation; exit 1 if one survives
    python tools/mutate.py --list             # names, findings, files
    python tools/mutate.py NAME ...           # only these (or a finding: "1", "5")
    python tools/mutate.py --tests-from REV   # against the tests of git revision REV
                                              # (the "before" picture; same mutations)

How: this file is also a pytest plugin. Each mutation runs as
``python -m pytest -p mutate -m "not slow" FILES`` in a scratch folder, with
FASTCONV_MUTATION=NAME; the plugin's pytest_configure applies the mutation before the
test modules are collected, and writes the hit count to FASTCONV_MUTATION_REPORT at
the end. Hypothesis runs without shrinking and without its example database there.
Mutations marked "no torch" run with torch hidden (an importable stub that raises
ModuleNotFoundError), as for a user who installed only the test extras: those must be
caught by checks that do not need PyTorch. The child imports the same fastconv as
``python -m pytest`` from the repository root would: the in-place build if there is
one, else the installed package. A control run without a mutation must pass first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

from mutate_registry import _HITS, MUTATIONS  # noqa: E402
import mutations  # noqa: E402,F401  (registers the catalogue in MUTATIONS)


# ---- the pytest plugin ----------------------------------------------------------------------

def pytest_configure(config):
    name = os.environ.get("FASTCONV_MUTATION")
    if not name or name == "none":
        return
    from hypothesis import Phase, settings
    settings.register_profile("mutate", database=None, phases=[Phase.explicit, Phase.reuse,
                                                               Phase.generate])
    settings.load_profile("mutate")
    MUTATIONS[name]["apply"]()
    config._fastconv_mutation = name


def pytest_report_header(config):
    name = os.environ.get("FASTCONV_MUTATION")
    return f"fastconv mutation: {name}" if name else None


def pytest_unconfigure(config):
    report = os.environ.get("FASTCONV_MUTATION_REPORT")
    if report and getattr(config, "_fastconv_mutation", None):
        Path(report).write_text(json.dumps({"mutation": config._fastconv_mutation,
                                            "applied": True, "hits": _HITS[0]}))


# ---- the harness ----------------------------------------------------------------------------

def _child_env(tmp, name, no_torch, report, tests_dir):
    env = dict(os.environ)
    paths = [str(HERE)]
    if any((REPO / "fastconv").glob("_kernels*.so")) or any((REPO / "fastconv").glob("_kernels*.pyd")):
        paths.insert(0, str(REPO))                  # the in-place build, as pytest from the root
    if no_torch:
        stub = Path(tmp) / "no_torch"
        stub.mkdir(exist_ok=True)
        (stub / "torch.py").write_text(
            'raise ModuleNotFoundError("torch hidden by tools/mutate.py", name="torch")\n')
        paths.insert(0, str(stub))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["FASTCONV_MUTATION"] = name
    env["FASTCONV_MUTATION_REPORT"] = str(report)
    env["FASTCONV_MUTATION_BENCHMARKS"] = str(tests_dir.parent / "benchmarks")
    return env


def run_one(name, tests_dir, files=None, no_torch=None, timeout=1200):
    """Run ``files`` (default: the mutation's) under mutation ``name`` ("none": no mutation)."""
    m = MUTATIONS.get(name, dict(files=[], no_torch=False))
    files = m["files"] if files is None else files
    no_torch = m["no_torch"] if no_torch is None else no_torch
    paths = [str(tests_dir / f) for f in files if (tests_dir / f).exists()]
    missing = [f for f in files if not (tests_dir / f).exists()]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutate",
               "-m", "not slow", "--rootdir", str(tests_dir.parent), f"--junitxml={xml}", *paths]
        t0 = time.time()
        r = subprocess.run(cmd, cwd=tmp, env=_child_env(tmp, name, no_torch, report, tests_dir),
                           capture_output=True, text=True, timeout=timeout)
        counts = dict(tests=0, failures=0, errors=0, skipped=0)
        failed_ids = []
        if xml.exists():
            root = ET.parse(xml).getroot()
            for suite in root.iter("testsuite"):
                for k in counts:
                    counts[k] += int(suite.get(k, 0))
            for case in root.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    failed_ids.append(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
        info = json.loads(report.read_text()) if report.exists() else {}
    failed = counts["failures"] + counts["errors"]
    if r.returncode == 0:
        verdict = "survived"
    elif r.returncode == 1 and failed:
        verdict = "caught"
    else:
        verdict = f"error (pytest exit {r.returncode})"
    return dict(name=name, verdict=verdict, failed=failed, failed_ids=failed_ids, tests=counts["tests"],
                skipped=counts["skipped"], hits=info.get("hits"), applied=info.get("applied", False),
                files=files, missing=missing, seconds=time.time() - t0, no_torch=no_torch,
                output=(r.stdout[-3000:] + r.stderr[-3000:]))


def _tests_from(rev, tmp):
    out = Path(tmp) / "tree"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "tests", "benchmarks",
                              "pyproject.toml"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out / "tests"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutation names or finding numbers (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--tests-from", metavar="REV",
                    help="run against the tests (and benchmarks) of git revision REV")
    ap.add_argument("--verbose", "-v", action="store_true", help="show pytest's output tail")
    ap.add_argument("--files", metavar="FILE,...", type=lambda v: [f for f in v.split(",") if f],
                    help="run these test files (comma-separated names in tests/) instead of "
                         "each mutation's own")
    ap.add_argument("--failed", type=int, default=0, metavar="N",
                    help="name up to N of the tests that failed under each mutation")
    args = ap.parse_args(argv)
    if args.list:
        for name, m in MUTATIONS.items():
            flag = " [no torch]" if m["no_torch"] else ""
            print(f"{m['finding']}  {name}{flag}: {m['doc']}\n     files: {' '.join(m['files'])}")
        return 0
    names = [n for n, m in MUTATIONS.items()
             if not args.names or n in args.names or m["finding"] in args.names]
    findings = {m["finding"] for m in MUTATIONS.values()}
    unknown = [n for n in args.names if n not in MUTATIONS and n not in findings]
    if unknown:
        ap.error(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    with tempfile.TemporaryDirectory() as tmp:
        tests_dir = _tests_from(args.tests_from, tmp) if args.tests_from else REPO / "tests"
        where = f"tests of {args.tests_from}" if args.tests_from else "tests of this tree"
        files = args.files or sorted({f for n in names for f in MUTATIONS[n]["files"]})
        control = run_one("none", tests_dir, files, no_torch=False)
        print(f"control run (no mutation, {where}): {control['verdict']}, "
              f"{control['tests']} tests, {control['skipped']} skipped, {control['seconds']:.0f} s")
        if control["verdict"] != "survived":
            print(control["output"])
            print("the tests fail without a mutation: nothing to measure")
            return 2
        results = []
        for n in names:
            r = run_one(n, tests_dir, args.files)
            results.append(r)
            hits = "?" if r["hits"] is None else r["hits"]
            note = "" if r["applied"] else "  NOT APPLIED"
            note += f"  (missing here: {' '.join(r['missing'])})" if r["missing"] else ""
            torch = " [no torch]" if r["no_torch"] else ""
            print(f"{MUTATIONS[n]['finding']:>2} {n:42s} {r['verdict']:9s} failed {r['failed']:>3}/"
                  f"{r['tests']:<4} hits {hits:<6} {r['seconds']:5.0f} s{torch}{note}", flush=True)
            for test_id in r["failed_ids"][:args.failed]:
                print(f"      {test_id}")
            if args.verbose or r["verdict"].startswith("error") or not r["applied"]:
                print(r["output"])
    caught = sum(r["verdict"] == "caught" for r in results)
    print(f"{caught} of {len(results)} mutations caught ({where})")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
