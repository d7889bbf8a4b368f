# Configure options of mnist-omp.

# --enable-native: tune the whole build for the CPU that runs configure.  The
# flag goes into NATIVE_CFLAGS (part of AM_CFLAGS), not CFLAGS, which is the
# user's: a CFLAGS given to configure or make comes after it and wins.
AC_DEFUN([MNIST_OMP_ARG_NATIVE], [
AC_ARG_ENABLE([native],
  [AS_HELP_STRING([--enable-native],
    [compile for this machine's CPU (-march=native); the binary may then not run
     on another CPU [default=no]])],
  [], [enable_native=no])
NATIVE_CFLAGS=
AS_IF([test "x$enable_native" = xyes], [
  AC_MSG_CHECKING([whether $CC accepts -march=native])
  save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -march=native"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no]); AC_MSG_ERROR([$CC does not accept -march=native])])
  CFLAGS=$save_CFLAGS
  NATIVE_CFLAGS=-march=native
])
AC_SUBST([NATIVE_CFLAGS])
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

# MNIST_OMP_CHECK_CFLAG(FLAG, VARIABLE): append FLAG to VARIABLE when $CC
# accepts it without a warning.
AC_DEFUN([MNIST_OMP_CHECK_CFLAG], [
AC_MSG_CHECKING([whether $CC accepts $1])
save_CFLAGS=$CFLAGS
CFLAGS="$CFLAGS $1 -Werror"
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
  [AC_MSG_RESULT([yes]); $2="${$2:+$$2 }$1"],
  [AC_MSG_RESULT([no])])
CFLAGS=$save_CFLAGS
])

# The engine's results must not depend on whether the compiler fuses a*b+c into
# one FMA instruction (that would make the numbers differ between builds for
# different CPUs), so contraction is switched off where the compiler allows it.
AC_DEFUN([MNIST_OMP_NO_FP_CONTRACT], [
FP_CFLAGS=
MNIST_OMP_CHECK_CFLAG([-ffp-contract=off], [FP_CFLAGS])
AC_SUBST([FP_CFLAGS])
])

# A math function that must set errno on a domain error keeps a loop that
# calls it from being vectorised: GCC and clang both leave Adam's update
# (sqrt of the second moment) scalar, and clang warns about its `#pragma omp
# simd'.  mnist-omp never reads errno after a math function, and the
# functions return the same values either way, so they are let off setting it.
AC_DEFUN([MNIST_OMP_NO_MATH_ERRNO], [
MNIST_OMP_CHECK_CFLAG([-fno-math-errno], [FP_CFLAGS])
])

# The kernels keep two tiles of weights or gradients in registers only once
# their loops over a tile are unrolled completely, which GCC does at -O2 when
# allowed to peel loops (about 1.2x faster; -O3 would also vectorise loops
# that must stay scalar, and is slower).
AC_DEFUN([MNIST_OMP_PEEL_LOOPS], [
UNROLL_CFLAGS=
MNIST_OMP_CHECK_CFLAG([-fpeel-loops], [UNROLL_CFLAGS])
AC_SUBST([UNROLL_CFLAGS])
])

# In a build without OpenMP the `#pragma omp` lines stay in the source: keep
# the `simd` ones working through -fopenmp-simd where the compiler has it, and
# do not warn about the others, which are meant to be ignored.
AC_DEFUN([MNIST_OMP_SERIAL_PRAGMAS], [
SERIAL_PRAGMA_CFLAGS=
AS_IF([test -z "$OPENMP_CFLAGS"], [
  MNIST_OMP_CHECK_CFLAG([-fopenmp-simd], [SERIAL_PRAGMA_CFLAGS])
  SERIAL_PRAGMA_CFLAGS="${SERIAL_PRAGMA_CFLAGS:+$SERIAL_PRAGMA_CFLAGS }-Wno-unknown-pragmas"
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

# --enable-fuzzing: build the libFuzzer targets of tests/fuzz/ (`make fuzz`),
# and everything else with the coverage instrumentation they feed on and with
# AddressSanitizer and UndefinedBehaviorSanitizer (it implies
# --enable-sanitizers).  libFuzzer comes with clang, so clang is required.
AC_DEFUN([MNIST_OMP_ARG_FUZZING], [
AC_ARG_ENABLE([fuzzing],
  [AS_HELP_STRING([--enable-fuzzing],
    [build the libFuzzer targets of the loaders for `make fuzz', with AddressSanitizer
     and UndefinedBehaviorSanitizer; requires CC=clang [default=no]])],
  [], [enable_fuzzing=no])
AS_IF([test "x$enable_fuzzing" = xyes], [
  AC_MSG_CHECKING([whether $CC is clang])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#ifndef __clang__
#error not clang
#endif
]], [])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([--enable-fuzzing requires clang, which provides libFuzzer, but CC is '$CC':
  run ./configure CC=clang --enable-fuzzing (Debian: apt-get install clang libclang-rt-14-dev)])])
  AC_MSG_CHECKING([whether $CC can link a libFuzzer target])
  save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -fsanitize=fuzzer,address,undefined"
  AC_LINK_IFELSE([AC_LANG_SOURCE([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return size > 0 && data[0] == 1; }
]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$CC cannot link with -fsanitize=fuzzer: libFuzzer is missing
  (Debian 12: apt-get install libclang-rt-14-dev; see config.log)])])
  CFLAGS="$save_CFLAGS -fsanitize=fuzzer-no-link"
  enable_sanitizers=yes
])
AM_CONDITIONAL([ENABLE_FUZZING], [test "x$enable_fuzzing" = xyes])
])

# --enable-sanitizers: build everything, tests included, with AddressSanitizer
# and UndefinedBehaviorSanitizer, any finding fatal.  Clang cannot vectorise
# some `#pragma omp simd` loops once ASan has instrumented them and says so
# with -Wpass-failed; that is expected here, so it is silenced (this build
# only, and only where the compiler knows the warning).
AC_DEFUN([MNIST_OMP_ARG_SANITIZERS], [
AC_ARG_ENABLE([sanitizers],
  [AS_HELP_STRING([--enable-sanitizers],
    [build with -fsanitize=address,undefined -fno-sanitize-recover=all (for `make check'
     under the sanitizers) [default=no]])],
  [], [enable_sanitizers=no])
AS_IF([test "x$enable_sanitizers" = xyes], [
  SANITIZER_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
  AC_MSG_CHECKING([whether $CC can build with $SANITIZER_FLAGS])
  save_CFLAGS=$CFLAGS
  save_LDFLAGS=$LDFLAGS
  CFLAGS="$CFLAGS $SANITIZER_FLAGS"
  LDFLAGS="$LDFLAGS $SANITIZER_FLAGS"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <stdlib.h>]],
                                  [[char *p = malloc(4); p[0] = 1; free(p);]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$CC cannot build with $SANITIZER_FLAGS (GCC needs libasan and libubsan,
  Debian: apt-get install gcc; clang needs libclang-rt-14-dev); see config.log])])
  AC_MSG_CHECKING([whether $CC knows -Wpass-failed])
  CFLAGS="$CFLAGS -Wpass-failed -Werror"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); CFLAGS="$save_CFLAGS $SANITIZER_FLAGS -Wno-pass-failed"],
    [AC_MSG_RESULT([no]); CFLAGS="$save_CFLAGS $SANITIZER_FLAGS"])
])
])

# Whether the build, with the final CFLAGS, is instrumented by a sanitizer
# that reserves terabytes of address space up front (AddressSanitizer, and
# likewise ThreadSanitizer and MemorySanitizer): --enable-sanitizers, or the
# user's own -fsanitize= in CFLAGS.  The shell tests then leave out the
# address-space limits (ulimit -v), under which such a build cannot start.
AC_DEFUN([MNIST_OMP_DETECT_SANITIZERS], [
AC_CACHE_CHECK([whether the build reserves address space for a sanitizer],
  [mnist_omp_cv_sanitizer_build],
  [AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#elif defined(__has_feature)
# if !__has_feature(address_sanitizer) && !__has_feature(thread_sanitizer) && !__has_feature(memory_sanitizer)
#  error no sanitizer
# endif
#else
# error no sanitizer
#endif
]], [])],
    [mnist_omp_cv_sanitizer_build=yes], [mnist_omp_cv_sanitizer_build=no])])
AC_SUBST([MNIST_OMP_SANITIZERS], [$mnist_omp_cv_sanitizer_build])
])

# `make check-valgrind' runs tests/valgrind.sh under this valgrind.
AC_DEFUN([MNIST_OMP_VALGRIND], [
AC_PATH_PROG([VALGRIND], [valgrind])
AC_ARG_VAR([VALGRIND], [valgrind, for `make check-valgrind'])
])

# --with-mpi: the distributed trainer (one process per MPI rank, each with its
# OpenMP threads).  Open MPI is found through pkg-config (ompi-c) or, where
# that has no module for it, through what its compiler wrapper mpicc says it
# adds; the flags go into MPI_CFLAGS and MPI_LIBS, which Makefile.am gives
# only to what calls MPI, never into the user's CFLAGS.  mpirun is looked up
# for tests/mpi.sh.
AC_DEFUN([MNIST_OMP_WITH_MPI], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_ARG_WITH([mpi],
  [AS_HELP_STRING([--with-mpi],
    [build the distributed trainer with Open MPI: run it under mpirun, one
     process per node or socket [default=no]])],
  [], [with_mpi=no])
AC_ARG_VAR([MPICC], [Open MPI's compiler wrapper, asked for MPI's flags when pkg-config has no ompi-c])
AC_ARG_VAR([MPIRUN], [mpirun, for tests/mpi.sh])
have_mpi=no
AS_IF([test "x$with_mpi" != xno], [
  PKG_CHECK_MODULES([MPI], [ompi-c], [have_mpi=yes], [
    AC_PATH_PROG([MPICC], [mpicc])
    AS_IF([test -n "$MPICC"], [
      AC_MSG_CHECKING([for MPI's flags from $MPICC])
      AS_IF([mpi_showme_cflags=`"$MPICC" --showme:compile 2>/dev/null` &&
             mpi_showme_libs=`"$MPICC" --showme:link 2>/dev/null`],
        [MPI_CFLAGS=$mpi_showme_cflags MPI_LIBS=$mpi_showme_libs have_mpi=yes
         AC_MSG_RESULT([$MPI_CFLAGS $MPI_LIBS])],
        [AC_MSG_RESULT([none: $MPICC is not Open MPI's wrapper])])])])
  AS_IF([test "x$have_mpi" = xyes], [
    AC_MSG_CHECKING([whether a program calling MPI links with $MPI_LIBS])
    save_CPPFLAGS=$CPPFLAGS
    save_LIBS=$LIBS
    CPPFLAGS="$CPPFLAGS $MPI_CFLAGS"
    LIBS="$MPI_LIBS $LIBS"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]],
                                    [[int provided; return MPI_Init_thread(0, 0, MPI_THREAD_FUNNELED, &provided);]])],
      [AC_MSG_RESULT([yes])], [AC_MSG_RESULT([no]); have_mpi=no])
    CPPFLAGS=$save_CPPFLAGS
    LIBS=$save_LIBS])
  AS_IF([test "x$have_mpi" != xyes],
    [AC_MSG_ERROR([--with-mpi given but Open MPI was not found (neither pkg-config's ompi-c
  nor mpicc --showme:compile/--showme:link gave flags that link; see config.log):
  Debian: apt-get install libopenmpi-dev openmpi-bin])])
  AC_PATH_PROG([MPIRUN], [mpirun])
  AC_DEFINE([HAVE_MPI], [1], [Define to 1 to build the distributed trainer with MPI.])
], [MPI_CFLAGS= MPI_LIBS=])
AC_SUBST([MPI_CFLAGS])
AC_SUBST([MPI_LIBS])
AM_CONDITIONAL([HAVE_MPI], [test "x$have_mpi" = xyes])
])
