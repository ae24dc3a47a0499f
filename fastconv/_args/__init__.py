"""Argument normalisation and validation: the one place where fastconv checks what a
user can get wrong, in plain Python, before any kernel runs or long work starts.

Every layer uses it: :mod:`fastconv.functional` and :mod:`fastconv.reference` (so the
two APIs accept and reject exactly the same inputs with the same messages), the
layers, the trainer, the data loaders and the command line. Its modules, by concern:

* :mod:`.base`: ints, floats, dtypes, arrays, random generators, the algorithm names,
  PyTorch's keyword names;
* :mod:`.geometry`: convolution, pooling, unfold/fold and linear parameters, with
  PyTorch's output-size rules and int64 overflow checks;
* :mod:`.geometry_extra`: transposed and 1-d convolution, adaptive and Lp pooling,
  deformable convolution;
* :mod:`.inputs`: the whole argument check of the further operators (and batch norm), shared by their
  native and reference versions;
* :mod:`.paths`: flags, non-finite data values, input and output files and folders,
  arrays read from files;
* :mod:`.quant`: int8 / uint8 operands, zero points, scales and kernel epilogues.

Import the names from here (``from fastconv._args import conv_params``).
"""

from .base import (  # noqa: F401
    _FLOAT_DTYPES,
    ALGOS,
    INT64_MAX,
    TORCH_KEYWORDS,
    as_dtype,
    as_float,
    as_int,
    check_algo,
    check_array,
    common_dtype,
    contiguous,
    make_rng,
    native_dtype,
    pair,
    spawn_seeds,
    torch_keywords,
)
from .geometry import (  # noqa: F401
    ConvParams,
    PoolParams,
    _check_overflow,
    check_max_pool_windows,
    check_shape,
    check_winograd,
    conv_padding,
    conv_params,
    fold_params,
    linear_params,
    out_size,
    pool_params,
    shape4,
    unfold_params,
    winograd_ok,
)
from .geometry_extra import (  # noqa: F401
    ConvTransposeParams,
    DeformParams,
    adaptive_output_size,
    adaptive_windows,
    conv1d_params,
    conv_transpose_params,
    deform_params,
    lp_pool_params,
    single,
)
from .inputs import (  # noqa: F401
    batch_norm_inputs,
    conv1d_inputs,
    conv_transpose_inputs,
    deform_inputs,
)
from .paths import as_bool, first_nonfinite, input_file, output_dir, output_file, samples_array  # noqa: F401
from .quant import (  # noqa: F401
    MAX_K,
    Epilogue,
    check_c4,
    check_int8,
    check_k,
    check_uint8,
    epilogue,
    qparams,
    qparams_axis,
    zero_point,
)
