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
