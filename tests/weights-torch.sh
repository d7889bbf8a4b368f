#!/bin/sh
# tests/weights-numpy.sh's checks through PyTorch: the exports loaded into
# the matching nn.Sequential with load_state_dict.  Skipped (77) without a
# python3 that has PyTorch.
library=torch
. "${top_srcdir:-$(dirname "$0")/..}/tests/weights-numpy.sh"
