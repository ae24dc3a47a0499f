#!/usr/bin/env bash
# Build and run the stand-alone C tests, csrc/tests/*.c, each linked with every
# csrc/*.c (the kernels, the runtime, the geometry check, the workspace cache).
# Three builds, each running every test:
#   openmp      -O2 -fopenmp            (the shipped configuration)
#   serial      -O2, no OpenMP           (the package builds and runs without it)
#   sanitizers  -O1 -g -fopenmp -fsanitize=address,undefined (any report fails)
#   portable    -O2 -fopenmp, the kernels as FASTCONV_PORTABLE_C=1 builds them
#               (the proxy for MSVC: -std=c11 -Werror=vla -DFC_PORTABLE_C,
#               csrc/tests/fc_poison.h forced first, the x86 ISA flags global;
#               x86 CPUs with AVX-512 VNNI only, else skipped with a message)
# all with -std=c99 -Wall -Wextra -Werror. test_geom_c also runs under
# FASTCONV_ISA=generic and a bad FASTCONV_ISA value, whose level must be that
# of no FASTCONV_ISA at all. Exits non-zero on any build failure, test failure
# or sanitizer report (every build and test still runs, to report them all).
#
#   bash tools/ctests.sh                # from anywhere; CC=clang bash tools/ctests.sh
#
# Honours CC (default gcc). A compiler without OpenMP skips the OpenMP builds
# (the sanitizer build then runs without it) and says so; one without the
# sanitizer runtimes is an error (exit 2), as in tools/sanitize.sh.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CC="${CC:-gcc}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

WARN=(-std=c99 -Wall -Wextra -Werror)
# clang reports a vectorisation hint it could not honour (e.g. at -O1 under the
# sanitizers) as a warning; that is about speed, not correctness.
if "$CC" --version 2>/dev/null | grep -qi clang; then
    WARN+=(-Wno-pass-failed)
fi
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
SRCS=("$ROOT"/csrc/*.c)
TESTS=("$ROOT"/csrc/tests/*.c)
failures=0
KFLAGS=()   # flags for the kernels (csrc/*.c) only, not the tests

# 0 when "$CC $*" compiles and links a small OpenMP program (and runs it).
probe() {
    printf '#include <stdio.h>\nint main(void) {\n#ifdef _OPENMP\n#pragma omp parallel\n#endif\n{ }\nputs("ok");\nreturn 0;\n}\n' \
        > "$WORK/probe.c"
    "$CC" "$@" "$WORK/probe.c" -o "$WORK/probe" > /dev/null 2>&1 && "$WORK/probe" > /dev/null 2>&1
}

have_omp=1
if ! probe -fopenmp; then
    have_omp=0
    echo "ctests: $CC cannot build with -fopenmp: the OpenMP builds are skipped"
fi
if ! probe "${SAN[@]}"; then
    echo "ctests: $CC has no ASan/UBSan runtime (-fsanitize=address,undefined)" >&2
    exit 2
fi

# run LABEL LOG CMD...: run a test binary, fail on a non-zero exit or a report.
run() {
    local label="$1" log="$2"
    shift 2
    local t0=$SECONDS
    if "$@" > "$log" 2>&1 && ! grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log"; then
        echo "ctests: $label ok ($((SECONDS - t0)) s): $(tail -n 1 "$log")"
    else
        echo "ctests: $label FAILED:" >&2
        tail -n 40 "$log" >&2
        failures=$((failures + 1))
    fi
}

# build NAME FLAGS...: compile the kernels once, link and run every test.
build() {
    local name="$1"
    shift
    local dir="$WORK/$name" objs=() src obj t bin
    mkdir -p "$dir"
    echo "ctests: [$name] $CC ${WARN[*]} $*"
    for src in "${SRCS[@]}"; do
        obj="$dir/$(basename "$src" .c).o"
        if ! "$CC" "${WARN[@]}" "$@" ${KFLAGS[@]+"${KFLAGS[@]}"} -I"$ROOT/csrc" -c "$src" -o "$obj" \
                2> "$dir/build.log"; then
            echo "ctests: [$name] $(basename "$src") does not compile:" >&2
            cat "$dir/build.log" >&2
            failures=$((failures + 1))
            return
        fi
        objs+=("$obj")
    done
    for t in "${TESTS[@]}"; do
        bin="$dir/$(basename "$t" .c)"
        if ! "$CC" "${WARN[@]}" "$@" -I"$ROOT/csrc" "$t" "${objs[@]}" -lm -o "$bin" \
                2> "$dir/build.log"; then
            echo "ctests: [$name] $(basename "$t") does not build:" >&2
            cat "$dir/build.log" >&2
            failures=$((failures + 1))
            continue
        fi
        run "[$name] $(basename "$t" .c)" "$dir/$(basename "$t" .c).log" "$bin"
    done
    # FASTCONV_ISA is read once, by runtime.c: a known name caps the level, any
    # other value leaves the level of no FASTCONV_ISA at all
    bin="$dir/test_geom_c"
    if [ -x "$bin" ]; then
        local plain capped bogus
        plain="$(env -u FASTCONV_ISA "$bin" isa 2>&1)"
        capped="$(FASTCONV_ISA=generic "$bin" isa 2>&1)"
        bogus="$(FASTCONV_ISA=sse9 "$bin" isa 2>&1)"
        if [ "$capped" = "generic" ] && [ "$bogus" = "$plain" ]; then
            echo "ctests: [$name] FASTCONV_ISA ok (none: $plain, generic: $capped, sse9: $bogus)"
        else
            echo "ctests: [$name] FASTCONV_ISA FAILED (none: $plain, generic: $capped, sse9: $bogus)" >&2
            failures=$((failures + 1))
        fi
    fi
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ "$have_omp" = 1 ]; then
    build openmp -O2 -fopenmp
fi
build serial -O2
if [ "$have_omp" = 1 ]; then
    build sanitizers -O1 -g -fopenmp "${SAN[@]}"
else
    build sanitizers -O1 -g "${SAN[@]}"
fi

# the MSVC proxy: its ISA flags are global, so it runs only where the CPU has them all
PORTABLE_ISA=(-mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mxsave)
if [ "$(uname -m)" = x86_64 ] && grep -qw avx512_vnni /proc/cpuinfo 2> /dev/null \
        && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
    KFLAGS=(-std=c11 -Werror=vla -include "$ROOT/csrc/tests/fc_poison.h")
    omp=()
    [ "$have_omp" = 1 ] && omp=(-fopenmp)
    build portable -O2 ${omp[@]+"${omp[@]}"} -DFC_PORTABLE_C "${PORTABLE_ISA[@]}"
    KFLAGS=()
else
    echo "ctests: [portable] SKIPPED: needs an x86-64 CPU with AVX-512 (F, BW, DQ, VL, VNNI)"
fi

if [ "$failures" -ne 0 ]; then
    echo "ctests: $failures failure(s)" >&2
    exit 1
fi
echo "ctests: OK"
