"""Build the fastconv extension: C99 kernels in csrc/ wrapped by Cython.

OpenMP is detected by compiling and linking a tiny test program with the
compiler setuptools is about to use; without it the package builds and runs
single-threaded. Flags are -O3 without -ffast-math or -march=native: SIMD
variants are chosen at run time.

Environment knobs:
  FASTCONV_NO_OPENMP=1   build without OpenMP even if the compiler has it
  FASTCONV_SANITIZE=1    build with -fsanitize=address,undefined (tools/sanitize.sh)
  FASTCONV_PORTABLE_C=1  the proxy for MSVC (GCC or clang): -DFC_PORTABLE_C, so no
                         GNU attribute, builtin or vector type is used (the plain-C
                         fallbacks instead), -std=c11 -Werror=vla, and
                         csrc/tests/fc_poison.h forced first, which poisons those
                         spellings; the x86 ISA flags are passed globally, as MSVC
                         compiles intrinsics in any function

MSVC: /O2 /std:c11, and OpenMP through /openmp:llvm (LLVM's runtime, OpenMP 3.x:
the kernels' unsigned loop indices and collapse clauses need more than the
OpenMP 2.0 of plain /openmp, so without /openmp:llvm the build is serial).
"""

import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
CSRC = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.c"))

OPENMP_TEST = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _openmp_flags(compiler):
    """Return (compile_args, link_args) that enable OpenMP, or ([], []) if it does not work."""
    if os.environ.get("FASTCONV_NO_OPENMP"):
        return [], []
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp:llvm"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    # The test program links with the compiler alone (setuptools adds LDFLAGS only
    # to shared-library links), so pass LDFLAGS here: macOS finds libomp that way.
    env_ldflags = []
    if compiler.compiler_type != "msvc":
        env_ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
    for cflags, lflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp_test.c")
            with open(src, "w") as f:
                f.write(OPENMP_TEST)
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, "omp_test", output_dir=tmp,
                                         extra_postargs=env_ldflags + lflags)
            except Exception:
                continue
        return cflags, lflags
    return [], []


# The ISA flags of the portable proxy build (every kernel variant in one
# translation unit, as MSVC compiles intrinsics anywhere; -mxsave for _xgetbv).
PORTABLE_ISA_FLAGS = ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl",
                      "-mavx512dq", "-mavx512vnni", "-mxsave"]


def _x86():
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _portable_csrc(compiler):
    """Compile csrc/*.c (not Cython's output, which is GCC-aware) in C11 with
    the GNU spellings poisoned: csrc/tests/fc_poison.h forced first."""
    strict = ["-std=c11", "-Werror=vla", "-include", str(HERE / "csrc" / "tests" / "fc_poison.h")]
    compile_one = compiler._compile
    csrc = str(HERE / "csrc")

    def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
        if os.path.abspath(src).startswith(csrc):
            extra_postargs = list(extra_postargs) + strict
        return compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts)

    compiler._compile = _compile
    print("fastconv: portable C (MSVC proxy): csrc/*.c with " + " ".join(strict))


class BuildExt(build_ext):
    def build_extensions(self):
        cflags, lflags = _openmp_flags(self.compiler)
        if self.compiler.compiler_type == "msvc":
            base = ["/O2", "/std:c11"]  # C11 mode: MSVC's C89 mode knows no restrict, no _Pragma
        else:
            base = ["-O3", "-std=c99", "-fno-strict-aliasing", "-Wno-unused-function"]
            if os.environ.get("FASTCONV_PORTABLE_C"):
                base += ["-DFC_PORTABLE_C"] + (PORTABLE_ISA_FLAGS if _x86() else [])
                _portable_csrc(self.compiler)
            if os.environ.get("FASTCONV_SANITIZE"):
                base += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                         "-fno-sanitize-recover=undefined", "-O1", "-g"]
                lflags = lflags + ["-fsanitize=address,undefined"]
        print(f"fastconv: OpenMP {'enabled' if cflags else 'disabled'}")
        for ext in self.extensions:
            ext.extra_compile_args = base + cflags + list(ext.extra_compile_args)
            ext.extra_link_args = lflags + list(ext.extra_link_args)
            ext.define_macros = list(ext.define_macros) + [
                ("FASTCONV_BUILD_OPENMP", "1" if cflags else "0"),
                ("FASTCONV_BUILD_CC", '"%s"' % os.path.basename(str(self.compiler.compiler_so[0]
                 if hasattr(self.compiler, "compiler_so") else self.compiler.compiler_type))),
            ]
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    ext = Extension(
        "fastconv._kernels",
        sources=["fastconv/_kernels.pyx"] + CSRC,
        include_dirs=["csrc"],
        depends=[str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.[hi]*")]
        + [str(p.relative_to(HERE)) for p in (HERE / "fastconv").glob("_kernels*.pxi")],
    )
    return cythonize(
        [ext],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
