#!/bin/sh
# Stands in for the Check suites when configure did not find Check: a hard
# error, so that a build without the unit tests can never look green.
echo "no-check.sh: the Check framework was not found when configure ran;" >&2
echo "  install it (Debian: apt-get install check) and rerun ./configure." >&2
exit 99
