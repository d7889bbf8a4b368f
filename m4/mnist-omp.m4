# Configure options of mnist-omp.

# --enable-native: tune the whole build for the CPU that runs configure.
AC_DEFUN([MNIST_OMP_ARG_NATIVE], [
AC_ARG_ENABLE([native],
  [AS_HELP_STRING([--enable-native],
    [compile for this machine's CPU (-march=native); the binary may then not run
     on another CPU [default=no]])],
  [], [enable_native=no])
AS_IF([test "x$enable_native" = xyes], [
  CFLAGS="$CFLAGS -march=native"
  AC_MSG_CHECKING([whether $CC accepts -march=native])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no]); AC_MSG_ERROR([$CC does not accept -march=native])])
])
])

# --enable-werror: turn the project's warnings into errors (CI uses it).
AC_DEFUN([MNIST_OMP_ARG_WERROR], [
AC_ARG_ENABLE([werror],
  [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors [default=no]])],
  [], [enable_werror=no])
WARN_CFLAGS="-Wall -Wextra"
AS_IF([test "x$enable_werror" = xyes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
AC_SUBST([WARN_CFLAGS])
])

# The engine's results must not depend on whether the compiler fuses a*b+c into
# one FMA instruction (that would make the numbers differ between builds for
# different CPUs), so contraction is switched off where the compiler allows it.
AC_DEFUN([MNIST_OMP_NO_FP_CONTRACT], [
FP_CFLAGS=
AC_MSG_CHECKING([whether $CC accepts -ffp-contract=off])
save_CFLAGS=$CFLAGS
CFLAGS="$CFLAGS -ffp-contract=off -Werror"
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
  [AC_MSG_RESULT([yes]); FP_CFLAGS="-ffp-contract=off"],
  [AC_MSG_RESULT([no])])
CFLAGS=$save_CFLAGS
AC_SUBST([FP_CFLAGS])
])

# In a build without OpenMP the `#pragma omp` lines stay in the source: keep
# the `simd` ones working through -fopenmp-simd where the compiler has it, and
# do not warn about the others, which are meant to be ignored.
AC_DEFUN([MNIST_OMP_SERIAL_PRAGMAS], [
AS_IF([test -z "$OPENMP_CFLAGS"], [
  save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -fopenmp-simd -Werror"
  AC_MSG_CHECKING([whether $CC accepts -fopenmp-simd])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); SERIAL_PRAGMA_CFLAGS="-fopenmp-simd -Wno-unknown-pragmas"],
    [AC_MSG_RESULT([no]); SERIAL_PRAGMA_CFLAGS="-Wno-unknown-pragmas"])
  CFLAGS=$save_CFLAGS
])
AC_SUBST([SERIAL_PRAGMA_CFLAGS])
])

# Kernels for AVX2 and AVX-512 next to the portable ones, picked at run time
# by what the CPU supports: a binary built anywhere runs everywhere, fast.
AC_DEFUN([MNIST_OMP_ISA_DISPATCH], [
AC_ARG_ENABLE([isa-dispatch],
  [AS_HELP_STRING([--disable-isa-dispatch],
    [build only the portable kernels, not the AVX2 and AVX-512 ones chosen at run
     time on x86-64 [default=enabled where the compiler supports it]])],
  [], [enable_isa_dispatch=yes])
have_x86_kernels=no
AS_IF([test "x$enable_isa_dispatch" = xyes], [
  AC_MSG_CHECKING([whether $CC can build AVX2 and AVX-512 kernels with run-time dispatch])
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[
#if !defined(__x86_64__)
#error not x86-64
#endif
__attribute__((target("avx2,fma"))) static float f2(float a) { return a * 2; }
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) static float f5(float a) { return a * 5; }
]], [[
__builtin_cpu_init();
return (__builtin_cpu_supports("avx512f") ? (int)f5(1) : 0) + (__builtin_cpu_supports("avx2") ? (int)f2(1) : 0);
]])],
    [have_x86_kernels=yes], [have_x86_kernels=no])
  AC_MSG_RESULT([$have_x86_kernels])
])
AS_IF([test "x$have_x86_kernels" = xyes],
  [AC_DEFINE([HAVE_X86_KERNELS], [1], [Define to 1 to build AVX2 and AVX-512 kernels chosen at run time.])])
])
