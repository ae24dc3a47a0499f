#!/usr/bin/env bash
# Cross-compile fastconv's C kernels and C tests for 64-bit Arm (aarch64) and run
# the tests under QEMU user-mode emulation: the kernels' portable paths (no x86
# SIMD, another memory model, another ABI) must build and pass on a CPU the
# developers do not have.
#
#   bash tools/cross_aarch64.sh              # from anywhere
#   CC="clang --target=aarch64-linux-gnu" bash tools/cross_aarch64.sh
#
# Every csrc/*.c is compiled once, and each csrc/tests/*.c is linked with all of
# them (so a test needs no list of the files it uses). The compiler is $CC
# (default aarch64-linux-gnu-gcc) and must target aarch64; CFLAGS adds to the
# flags. Binaries are linked dynamically against the cross sysroot, which QEMU
# finds through QEMU_LD_PREFIX (default /usr/aarch64-linux-gnu).
#
# Missing tools (gcc-aarch64-linux-gnu, qemu-user) are installed with apt-get.
# Without apt-get the script says so and exits 0 (nothing checked); with apt-get,
# a failed install is a failure. Exits non-zero on any build or test failure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "cross_aarch64: $*"; }
die() { echo "cross_aarch64: FAILED: $*" >&2; exit 1; }
t0=$SECONDS

CC="${CC:-aarch64-linux-gnu-gcc}"
CC_BIN="${CC%% *}"
QEMU_LD_PREFIX="${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}"
export QEMU_LD_PREFIX

find_qemu() { command -v qemu-aarch64 || command -v qemu-aarch64-static || true; }

# ---------------------------------------------------------------- tools
# The cross C library (headers, libc, libm; a "recommends" of the compiler, so
# named here) lives in $QEMU_LD_PREFIX, where QEMU also loads it from.
need=()
command -v "$CC_BIN" >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e "$QEMU_LD_PREFIX/include/stdlib.h" ] || need+=(libc6-dev-arm64-cross)
[ -n "$(find_qemu)" ] || need+=(qemu-user)
if [ "${#need[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        say "SKIPPED: ${need[*]} missing and no apt-get to install them; nothing was checked"
        exit 0
    fi
    say "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q > /dev/null || die "apt-get update"
    # qemu-user and qemu-user-static both provide qemu-aarch64; take the second
    # where the first is not packaged.
    if ! apt-get install -y -q --no-install-recommends "${need[@]}" > /dev/null; then
        alt=("${need[@]/qemu-user/qemu-user-static}")
        apt-get install -y -q --no-install-recommends "${alt[@]}" > /dev/null \
            || die "apt-get install ${need[*]}"
    fi
fi
QEMU="$(find_qemu)"
[ -n "$QEMU" ] || die "no qemu-aarch64 after installing qemu-user"
command -v "$CC_BIN" >/dev/null || die "compiler $CC_BIN not found"
# shellcheck disable=SC2086
target="$($CC -dumpmachine 2>/dev/null || true)"
case "$target" in
    aarch64*|arm64*) ;;
    *) die "CC=$CC targets '${target:-unknown}', not aarch64 (set CC to an aarch64 cross compiler)" ;;
esac
say "compiler: $CC ($target; $($CC --version | head -1))"
say "emulator: $QEMU ($("$QEMU" --version | head -1)), QEMU_LD_PREFIX=$QEMU_LD_PREFIX"

# ---------------------------------------------------------------- build
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastconv-cross.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# The flags of the package build (setup.py): C99, -O3, no -ffast-math, OpenMP.
FLAGS=(-std=c99 -O2 -fno-strict-aliasing -Wall -Wextra -Wno-unused-function -fopenmp "-I$ROOT/csrc")
# shellcheck disable=SC2206
EXTRA=(${CFLAGS:-})
objs=()
for src in "$ROOT"/csrc/*.c; do
    obj="$WORK/$(basename "${src%.c}").o"
    # shellcheck disable=SC2086
    $CC "${FLAGS[@]}" "${EXTRA[@]}" -c "$src" -o "$obj" 2>> "$WORK/build.log" \
        || { cat "$WORK/build.log"; die "compiling $(basename "$src")"; }
    objs+=("$obj")
done
say "compiled ${#objs[@]} kernel files: $(cd "$ROOT/csrc" && echo *.c)"
nwarn="$(grep -c "warning:" "$WORK/build.log" || true)"
[ "$nwarn" = "0" ] || { say "$nwarn compiler warning(s):"; grep "warning:" "$WORK/build.log" | sed 's/^/    /' | head -20; }

tests=("$ROOT"/csrc/tests/*.c)
[ -e "${tests[0]}" ] || die "no C tests in csrc/tests"
bins=()
for src in "${tests[@]}"; do
    bin="$WORK/$(basename "${src%.c}")"
    # shellcheck disable=SC2086
    $CC "${FLAGS[@]}" "${EXTRA[@]}" "$src" "${objs[@]}" -lm -o "$bin" 2>> "$WORK/build.log" \
        || { cat "$WORK/build.log"; die "building $(basename "$src")"; }
    bins+=("$bin")
done
# An ELF header's e_machine (2 bytes at offset 18) is 183 for AArch64.
for bin in "${bins[@]}"; do
    machine="$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')"
    [ "$machine" = 183 ] || die "$(basename "$bin") is not an AArch64 ELF binary (e_machine $machine)"
done
say "built ${#bins[@]} test programs for aarch64 (t=$((SECONDS - t0))s)"

# ---------------------------------------------------------------- run
fail=0
for bin in "${bins[@]}"; do
    name="$(basename "$bin")"
    s=$SECONDS
    if "$QEMU" "$bin" > "$WORK/$name.out" 2>&1; then
        say "PASS $name ($((SECONDS - s))s): $(tail -1 "$WORK/$name.out")"
    else
        say "FAIL $name ($((SECONDS - s))s):"
        tail -30 "$WORK/$name.out" | sed 's/^/    /'
        fail=$((fail + 1))
    fi
done
[ "$fail" = 0 ] || die "$fail of ${#bins[@]} C test programs failed under $QEMU"
say "OK: ${#bins[@]} C test programs pass on aarch64 under QEMU (t=$((SECONDS - t0))s)"
