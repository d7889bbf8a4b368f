/* Instantiates kernels_impl.h in both precisions for one instruction set:
 * kernels.c defines KERNEL_ISA (a name) and KERNEL_TARGET (a function
 * attribute, empty for the portable build) before each inclusion. */
#define KERNEL_ISA_NAME STRING(KERNEL_ISA)

#define REAL float
#define REAL_FMA fmaf
#define FN(name) PASTE(name, _f32_, KERNEL_ISA)
#include "kernels_impl.h"
#undef REAL
#undef REAL_FMA
#undef FN

#define REAL double
#define REAL_FMA fma
#define FN(name) PASTE(name, _f64_, KERNEL_ISA)
#include "kernels_impl.h"
#undef REAL
#undef REAL_FMA
#undef FN

#undef KERNEL_ISA_NAME
#undef KERNEL_TARGET
#undef KERNEL_ISA
