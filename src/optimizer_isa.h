/* Instantiates optimizer_impl.h in both precisions for one instruction set:
 * optimizer.c defines OPTIMIZER_ISA (a name) and OPTIMIZER_TARGET (a
 * function attribute, empty for the portable build) before each inclusion. */
#define REAL float
#define SQRT sqrtf
#define FN(name) PASTE(name, _f32_, OPTIMIZER_ISA)
#include "optimizer_impl.h"
#undef REAL
#undef SQRT
#undef FN

#define REAL double
#define SQRT sqrt
#define FN(name) PASTE(name, _f64_, OPTIMIZER_ISA)
#include "optimizer_impl.h"
#undef REAL
#undef SQRT
#undef FN

#undef OPTIMIZER_TARGET
#undef OPTIMIZER_ISA
