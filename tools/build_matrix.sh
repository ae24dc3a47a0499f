#!/usr/bin/env bash
# Build fastconv the ways a user's machine may, besides the default (GCC with
# OpenMP), and check each build works:
#   clang      CC=clang with OpenMP (LLVM's libomp, as on macOS);
#   no-openmp  FASTCONV_NO_OPENMP=1 with the default compiler: single-threaded,
#              and fastconv.openmp_enabled() must say False;
#   portable   FASTCONV_PORTABLE_C=1, the proxy for MSVC (no GNU attribute,
#              builtin or vector type: see setup.py and csrc/tests/fc_poison.h);
#              on x86-64 CPUs with AVX-512 VNNI only (its ISA flags are global);
# then the C tests (csrc/tests) built with CC=clang, through tools/ctests.sh
# (whose builds include the portable proxy)
# when the tree has it, else by a loop here.
#
#   bash tools/build_matrix.sh           # from anywhere; needs python3 and PyPI
#
# Each build happens in a temporary copy of the tree (the checkout is only read)
# with a venv of its own (numpy, Cython, setuptools). Each is smoke-tested from a
# scratch folder: conv2d, its backward and max pooling against fastconv.reference
# in float32 and float64 (integer-valued data: exact sums), the OpenMP answer, and
# `fastconv check`. clang, LLVM's OpenMP runtime (libomp-dev) and clang's sanitizer
# runtime (libclang-rt-<major>-dev) are installed with
# apt-get when missing; without apt-get the clang steps are skipped with a message.
# Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
say() { echo "build_matrix: $*"; }
die() { echo "build_matrix: FAILED: $*" >&2; exit 1; }
t0=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastconv-matrix.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- clang
have_clang=1
clang_omp() {   # does clang compile and link an OpenMP program?
    printf '#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n' > "$WORK/omp.c"
    clang -fopenmp "$WORK/omp.c" -o "$WORK/omp" >/dev/null 2>&1
}
if ! command -v clang >/dev/null || ! clang_omp; then
    if command -v apt-get >/dev/null; then
        say "installing clang and libomp-dev (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q > /dev/null || die "apt-get update"
        apt-get install -y -q --no-install-recommends clang libomp-dev > /dev/null \
            || die "apt-get install clang libomp-dev"
        clang_omp || die "clang -fopenmp does not link after installing libomp-dev"
    elif command -v clang >/dev/null; then
        say "clang has no OpenMP runtime here and there is no apt-get: the clang build will be single-threaded"
    else
        have_clang=0
        say "SKIPPED (clang steps): no clang and no apt-get to install it"
    fi
fi
# The C tests run under ASan/UBSan too: clang needs its sanitizer runtime, which
# Debian ships apart from the compiler (libclang-rt-<major>-dev).
clang_san() {
    printf 'int main(void){return 0;}\n' > "$WORK/san.c"
    clang -fsanitize=address,undefined "$WORK/san.c" -o "$WORK/san" >/dev/null 2>&1
}
if [ "$have_clang" = 1 ] && ! clang_san; then
    major="$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -1)"
    if command -v apt-get >/dev/null && [ -n "$major" ]; then
        say "installing clang's sanitizer runtime libclang-rt-$major-dev (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends "libclang-rt-$major-dev" > /dev/null \
            || { apt-get update -q > /dev/null && apt-get install -y -q --no-install-recommends \
                 "libclang-rt-$major-dev" > /dev/null; } \
            || die "apt-get install libclang-rt-$major-dev"
        clang_san || die "clang -fsanitize=address,undefined does not link after installing libclang-rt-$major-dev"
    else
        die "clang has no ASan/UBSan runtime and it cannot be installed here (no apt-get)"
    fi
fi
[ "$have_clang" = 0 ] || say "clang: $(clang --version | head -1)"

# ---------------------------------------------------------------- one venv for the builds
say "venv with numpy, Cython, setuptools"
"$PYTHON" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check numpy tqdm "Cython>=3.0.11" "setuptools>=77" \
    || die "pip install numpy Cython setuptools"

copy_tree() {   # copy_tree DEST: the checkout's files (tracked and new, not ignored)
    mkdir -p "$1"
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
            | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$1"
    else
        tar -C "$ROOT" --exclude=build --exclude=dist --exclude='*.egg-info' --exclude='*.so' \
            --exclude=__pycache__ --exclude=fastconv/_kernels.c --exclude=.git -cf - . | tar -xf - -C "$1"
    fi
    rm -f "$1"/fastconv/_kernels*.so "$1"/fastconv/_kernels.c
}

SMOKE='
import sys
import numpy as np
import fastconv
from fastconv import reference as ref

want_omp = sys.argv[1]
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    x = rng.integers(-3, 4, (2, 6, 11, 9)).astype(dt)
    w = rng.integers(-2, 3, (8, 3, 3, 3)).astype(dt)
    b = rng.integers(-2, 3, 8).astype(dt)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    y = fastconv.conv2d(x, w, b, **kw)
    assert np.array_equal(y, ref.conv2d(x, w, b, **kw)), "conv2d"
    for algo in ("im2col", "direct", "gemm"):
        assert np.array_equal(fastconv.conv2d(x, w, b, algo=algo, **kw), y), algo
    dy = rng.integers(-2, 3, y.shape).astype(dt)
    for got, exp in zip(fastconv.conv2d_backward(dy, x, w, **kw), ref.conv2d_backward(dy, x, w, **kw)):
        assert np.array_equal(got, exp), "conv2d_backward"
    x2 = rng.integers(-9, 10, (2, 3, 16, 16)).astype(dt)
    w2 = rng.integers(-2, 3, (4, 3, 3, 3)).astype(dt)
    # Winograd transforms round (fractions), so this one is close, not equal.
    np.testing.assert_allclose(fastconv.conv2d(x2, w2, padding=1, algo="winograd"),
                               ref.conv2d(x2, w2, padding=1), rtol=1e-5, atol=1e-4)
    assert np.array_equal(fastconv.max_pool2d(x, 3, 2, 1), ref.max_pool2d(x, 3, 2, 1)), "max_pool2d"
got = fastconv.openmp_enabled()
if want_omp != "any":
    assert got == (want_omp == "yes"), "openmp_enabled() is %s" % got
fastconv.show_config()
print("smoke: conv2d (4 algorithms), conv2d_backward, max_pool2d == reference; openmp_enabled() = %s" % got)
'

build_and_smoke() {   # build_and_smoke NAME WANT_OMP(yes|no|any) ENV...
    local name="$1" want="$2"; shift 2
    local dir="$WORK/$name" s=$SECONDS
    say "--- $name: build ($*) (t=$((SECONDS - t0))s)"
    copy_tree "$dir"
    (cd "$dir" && env "$@" "$PY" setup.py build_ext --inplace > "$WORK/$name.log" 2>&1) \
        || { tail -40 "$WORK/$name.log"; die "$name: build"; }
    grep -h "fastconv: OpenMP" "$WORK/$name.log" | sed "s/^/build_matrix: $name: /" || true
    say "$name: built in $((SECONDS - s))s; smoke test"
    mkdir -p "$WORK/scratch"
    (cd "$WORK/scratch" && PYTHONPATH="$dir" "$PY" -c "$SMOKE" "$want") || die "$name: smoke test"
    (cd "$WORK/scratch" && PYTHONPATH="$dir" "$PY" -m fastconv check --cases 20 > "$WORK/$name.check" 2>&1) \
        || { cat "$WORK/$name.check"; die "$name: fastconv check"; }
    say "$name: $(tail -1 "$WORK/$name.check")"
    rm -rf "$dir"
}

if [ "$have_clang" = 1 ]; then
    omp=any; clang_omp && omp=yes
    build_and_smoke clang "$omp" CC=clang
fi
build_and_smoke no-openmp no FASTCONV_NO_OPENMP=1
if [ "$(uname -m)" = x86_64 ] && grep -qw avx512_vnni /proc/cpuinfo 2> /dev/null \
        && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
    build_and_smoke portable any FASTCONV_PORTABLE_C=1
else
    say "SKIPPED (portable): the MSVC proxy build needs an x86-64 CPU with AVX-512 VNNI"
fi

# ---------------------------------------------------------------- C tests with clang
if [ "$have_clang" = 1 ]; then
    s=$SECONDS
    if [ -f "$ROOT/tools/ctests.sh" ]; then
        say "--- C tests with CC=clang: tools/ctests.sh (t=$((SECONDS - t0))s)"
        CC=clang bash "$ROOT/tools/ctests.sh" || die "C tests with clang (tools/ctests.sh)"
    else
        say "--- C tests with CC=clang: every csrc/*.c linked into each csrc/tests/*.c (t=$((SECONDS - t0))s)"
        flags=(-std=c99 -O2 -fno-strict-aliasing -Wall -Wextra -Wno-unused-function "-I$ROOT/csrc")
        clang_omp && flags+=(-fopenmp)
        # shellcheck disable=SC2206
        flags+=(${CFLAGS:-})
        objs=()
        for src in "$ROOT"/csrc/*.c; do
            obj="$WORK/c_$(basename "${src%.c}").o"
            clang "${flags[@]}" -c "$src" -o "$obj" || die "clang: compiling $(basename "$src")"
            objs+=("$obj")
        done
        n=0
        for src in "$ROOT"/csrc/tests/*.c; do
            bin="$WORK/$(basename "${src%.c}")"
            clang "${flags[@]}" "$src" "${objs[@]}" -lm -o "$bin" || die "clang: building $(basename "$src")"
            out="$("$bin" 2>&1)" || { echo "$out" | tail -30; die "$(basename "$bin") (clang) failed"; }
            say "PASS $(basename "$bin") (clang): $(echo "$out" | tail -1)"
            n=$((n + 1))
        done
        [ "$n" -gt 0 ] || die "no C tests in csrc/tests"
    fi
    say "C tests with clang: OK in $((SECONDS - s))s"
fi
say "OK (t=$((SECONDS - t0))s)"
