#!/usr/bin/env bash
# First the stand-alone C tests (tools/ctests.sh: with and without OpenMP, then
# under ASan + UBSan). Then build the extension with AddressSanitizer +
# UndefinedBehaviorSanitizer and run the kernel tests under it; then check that
# repeated calls do not leak. Fails (non-zero exit) on any sanitizer report or
# test failure.
#
#   bash tools/sanitize.sh            # from the project root, in an env with the test extras
#
# The build happens in a temporary copy of the source tree, so the normal
# build and install are untouched. CC (default gcc) is used for both parts.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CC="${CC:-gcc}"
export CC

echo "sanitize: C kernel tests (tools/ctests.sh)"
bash "$ROOT/tools/ctests.sh"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

LIBASAN="$($CC -print-file-name=libasan.so)"
LIBUBSAN="$($CC -print-file-name=libubsan.so)"
if [ ! -e "$LIBASAN" ] || [ ! -e "$LIBUBSAN" ]; then
    echo "sanitize: $CC has no ASan/UBSan runtime (libasan.so / libubsan.so not found)" >&2
    exit 2
fi

# The in-place build needs the build requirements in this environment.
python -c "import Cython, setuptools" 2>/dev/null || python -m pip install --quiet "Cython>=3.0" "setuptools>=64"

cp -r "$ROOT/csrc" "$ROOT/fastconv" "$ROOT/setup.py" "$ROOT/pyproject.toml" "$ROOT/tests" "$WORK/"
cp "$ROOT/README.md" "$WORK/" 2>/dev/null || true
rm -f "$WORK"/fastconv/_kernels*.so "$WORK"/fastconv/_kernels.c
cd "$WORK"
echo "sanitize: building with -fsanitize=address,undefined"
FASTCONV_SANITIZE=1 CC="$CC" python setup.py -q build_ext --inplace > build.log 2>&1 || {
    cat build.log; exit 1; }

# Python itself is not instrumented: preload the runtimes, and leave leak
# detection to the RSS check below (the interpreter's own allocations at exit
# would drown LeakSanitizer's report).
export LD_PRELOAD="$LIBASAN:$LIBUBSAN"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$WORK"
export FASTCONV_FUZZ_EXAMPLES="${FASTCONV_FUZZ_EXAMPLES:-60}"

echo "sanitize: kernel tests under ASan/UBSan"
python -m pytest -q -p no:cacheprovider -x \
    tests/test_conv.py tests/test_pool.py tests/test_im2col.py tests/test_errors.py \
    tests/test_concurrency.py tests/test_fuzz.py tests/test_workspace.py tests/test_linear.py \
    2>&1 | tee pytest.log
if grep -qE "ERROR: AddressSanitizer|runtime error:" pytest.log; then
    echo "sanitize: sanitizer reported an error" >&2
    exit 1
fi

echo "sanitize: leak check (RSS over repeated calls)"
python "$ROOT/tools/leakcheck.py"
echo "sanitize: OK"
