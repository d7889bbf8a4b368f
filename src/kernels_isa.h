/* Instantiates kernels_impl.h in both precisions for one instruction set:
 * kernels.c defines KERNEL_ISA (a name), KERNEL_TARGET (a function
 * attribute, empty for the portable build), the dense tile's shape,
 * KERNEL_ROWS rows of KERNEL_COLUMN_BYTES, and the first layer's tile
 * widths, KERNEL_FORWARD_BYTES forward and KERNEL_SPARSE_BYTES for the
 * weight gradient, before each inclusion. */
#define KERNEL_ISA_NAME STRING(KERNEL_ISA)

#define REAL float
#define REAL_FMA fmaf
#define REAL_EXP expf
#define REAL_LOG logf
#define REAL_TANH tanhf
#define FN(name) PASTE(name, _f32_, KERNEL_ISA)
#include "kernels_impl.h"
#undef REAL
#undef REAL_FMA
#undef REAL_EXP
#undef REAL_LOG
#undef REAL_TANH
#undef FN

#define REAL double
#define REAL_FMA fma
#define REAL_EXP exp
#define REAL_LOG log
#define REAL_TANH tanh
#define FN(name) PASTE(name, _f64_, KERNEL_ISA)
#include "kernels_impl.h"
#undef REAL
#undef REAL_FMA
#undef REAL_EXP
#undef REAL_LOG
#undef REAL_TANH
#undef FN

#undef KERNEL_ISA_NAME
#undef KERNEL_TARGET
#undef KERNEL_ISA
#undef KERNEL_ROWS
#undef KERNEL_COLUMN_BYTES
#undef KERNEL_FORWARD_BYTES
#undef KERNEL_SPARSE_BYTES
