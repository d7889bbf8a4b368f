#!/bin/sh
# The rule of every output (--save, --checkpoint, --log, --plots) and of
# stdout, end to end:
#   - a device, FIFO, socket or directory is refused before training, and
#     left as it was; a symbolic link is followed and stays a link; a
#     replaced file keeps its mode; a 250-character name works;
#   - a missing directory fails at once; an output that fails at the end
#     does not stop the others or the results;
#   - closed descriptors 0-2 are not taken by the log; a write error on
#     stdout fails every command;
#   - a stop signal after training still gives 128+N; one ignored at start
#     stays ignored.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
testlib_start outputs

small="--epochs 2 --train-size 100 --test-size 50 -q"

# refused DESCRIPTION OPTION PATH: the run fails before training, saying so.
refused() {
    expect_status 1 "$1" -- "$prog" $small "$2" "$3"
    expect_in "$work/err" "refusing to replace it\|exists and is not a directory"
    ! grep -q '^Test Set Accuracy' "$work/out" || fail "$1: trained before refusing"
}

# ------------------------------------------------------------ types
mkfifo "$work/fifo" || exit 99
mkdir "$work/dir"
for option in --save --checkpoint --log; do
    refused "$option onto a FIFO" "$option" "$work/fifo"
    [ -p "$work/fifo" ] || fail "$option replaced a FIFO"
    refused "$option onto a directory" "$option" "$work/dir"
    [ -d "$work/dir" ] || fail "$option replaced a directory"
done
refused "--plots onto a FIFO" --plots "$work/fifo"
mkfifo "$work/dir/loss.svg"
refused "--plots with a FIFO inside" --plots "$work/dir"
# Not /dev/full itself: a broken build would replace it.
if mknod "$work/device" c 1 7 2>/dev/null; then
    refused "--checkpoint onto a device" --checkpoint "$work/device"
    [ -c "$work/device" ] || fail "--checkpoint replaced a character device"
    expect_in "$work/err" "^mnist-omp: $work/device: is a character device; refusing to replace it\$"
    refused "--save onto a device made with mknod" --save "$work/device"
    [ -c "$work/device" ] || fail "--save replaced a character device"
    ln -s device "$work/to-device"
    refused "--save onto a link to a device" --save "$work/to-device"
    [ -c "$work/device" ] && [ -L "$work/to-device" ] || fail "a link to a device was replaced"
else
    echo "mknod not permitted: the case of a device made with mknod is skipped"
fi

# A link is followed: the target is replaced, the link stays, the mode is kept.
echo old >"$work/target"
chmod 600 "$work/target"
ln -s target "$work/link"
expect_status 0 "--save onto a link" -- "$prog" $small --save "$work/link"
[ -L "$work/link" ] || fail "--save replaced the link itself"
cmp -s "$work/link" "$work/target" && ! grep -q '^old$' "$work/target" ||
    fail "--save did not write the link's target"
mode=$(ls -l "$work/target" | cut -c1-10)
[ "$mode" = "-rw-------" ] || fail "--save changed a 600 file's mode to $mode"
echo old >"$work/private.model"
chmod 600 "$work/private.model"
expect_status 0 "--save onto a 600 file" -- "$prog" $small --save "$work/private.model"
mode=$(ls -l "$work/private.model" | cut -c1-10)
[ "$mode" = "-rw-------" ] || fail "--save changed a 600 file's mode to $mode"
# A new file gets 0666 less the umask.
(umask 027 && "$prog" $small --save "$work/new.model" >/dev/null 2>&1)
mode=$(ls -l "$work/new.model" | cut -c1-10)
[ "$mode" = "-rw-r-----" ] || fail "a new file under umask 027 got $mode"

long=$(printf '%0250d' 0)
expect_status 0 "--save to a 250-character name" -- "$prog" $small --save "$work/$long"
[ -s "$work/$long" ] || fail "the 250-character name was not written"
leftovers=$(find "$work" -name '.mnist-omp-*')
[ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"

# ------------------------------------------------------------ early and late failures
expect_status 1 "--save into a missing directory" -- "$prog" --epochs 300 --train-size 100 \
    --test-size 50 -q --save /nonexistent/m
expect_in "$work/err" '^mnist-omp: /nonexistent/m: cannot write in /nonexistent: '
! grep -q '^Test Set Accuracy' "$work/out" || fail "--save /nonexistent/m trained first"

# A file-size limit makes the model (about 100 kB) fail at the end while the
# log (a few lines) is written: the results are printed, the log is whole,
# and the message names the model.  SIGXFSZ ignored: the write fails instead.
(trap '' XFSZ && ulimit -f 50 &&
    exec "$prog" $small --save "$work/late.model" --log "$work/late.csv") \
    >"$work/out" 2>"$work/err"
status=$?
[ "$status" -eq 1 ] || fail "a late --save failure: exit status $status, expected 1"
expect_in "$work/err" "^mnist-omp: .*$work/late.model: File too large"
expect_in "$work/err" '^mnist-omp: 1 output was not written'
expect_in "$work/out" '^Test Set Accuracy = '
[ "$(wc -l <"$work/late.csv")" -eq 3 ] || fail "a late --save failure lost the log"
[ ! -e "$work/late.model" ] || fail "a late --save failure left a file"

# ------------------------------------------------------------ descriptors and stdout
"$prog" --epochs 2 --train-size 100 --test-size 50 --log "$work/closed.csv" >&- 2>"$work/err"
status=$?
[ "$status" -eq 1 ] || fail "training with stdout closed: exit status $status, expected 1"
expect_in "$work/err" '^mnist-omp: write error: '
! grep -q -v '^epoch,loss,seconds,test_accuracy$\|^[0-9]*,[-+.0-9e]*,[.0-9]*,[.0-9]*$' "$work/closed.csv" 2>/dev/null ||
    fail "the report went into the log with stdout closed: $(grep -v '^[0-9e]' "$work/closed.csv" | head -n 2)"

if [ -w /dev/full ]; then
    for command in "--help" "--version" "bench --help" "predict --help" "export --help" \
        "$small" "bench --sizes 100 --epochs 1 --warmup 0 --threads 1"; do
        # shellcheck disable=SC2086
        expect_status 1 "$command > /dev/full" -- sh -c "exec \"\$0\" $command >/dev/full" "$prog"
        expect_in "$work/err" '^mnist-omp: write error: No space left on device$'
    done
else
    echo "/dev/full is not writable here: the write-error cases are skipped"
fi
expect_status 1 "--version with stdout closed" -- sh -c 'exec "$0" --version >&-' "$prog"
expect_in "$work/err" '^mnist-omp: write error: '

# ------------------------------------------------------------ signals
# long_run: trains until stopped, printing every epoch to $work/long.out;
# exec, so that the signals reach the program, not a shell.
long_run() {
    exec "$prog" --epochs 100000 --train-size 100 --test-size 10 --print-every 1 "$@" \
        >"$work/long.out" 2>"$work/long.err"
}

# wait_lines N PID: until $work/long.out has N lines or PID is gone (10 s at most).
wait_lines() {
    tries=0
    while [ "$(wc -l <"$work/long.out")" -lt "$1" ] && kill -0 "$2" 2>/dev/null &&
        [ "$tries" -lt 200 ]; do
        sleep 0.05
        tries=$((tries + 1))
    done
}

# A SIGINT ignored at start (trap '' INT) stays ignored: training goes on
# after it, and SIGTERM ends the run.
(trap '' INT && long_run) &
pid=$!
: >"$work/long.out"
wait_lines 6 "$pid"
kill -INT "$pid"
lines=$(wc -l <"$work/long.out")
wait_lines $((lines + 3)) "$pid"
kill -TERM "$pid" 2>/dev/null
wait "$pid"
status=$?
[ "$status" -eq 143 ] || fail "an ignored SIGINT was caught: exit status $status, expected 143 ($(cat "$work/long.err"))"

# A SIGINT that arrives after training, while the files are written, gives
# 130 and a message, and the files are complete.  A large model makes the
# writing last: the signal is sent once the checkpoint (written first) is
# there, and the model's 64 MB take a good part of a second to write after
# it (with 2000 hidden units, once the engine got faster, the rest of the run
# could end within the 10 ms between two looks for the checkpoint).
[ -n "$with_sigint" ] || echo "env --default-signal is missing: SIGINT after training is skipped"
${with_sigint:-true} "$prog" --epochs 1 --train-size 10 --test-size 100 --hidden 20000 -q \
    --checkpoint "$work/late.ckpt" --save "$work/signalled.model" >"$work/out" 2>"$work/err" &
pid=$!
tries=0
while [ ! -e "$work/late.ckpt" ] && kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 2000 ]; do
    sleep 0.01
    tries=$((tries + 1))
done
if [ -z "$with_sigint" ]; then
    :
elif kill -INT "$pid" 2>/dev/null; then
    wait "$pid"
    status=$?
    [ "$status" -eq 130 ] || fail "a SIGINT after training: exit status $status, expected 130"
    expect_in "$work/err" '^mnist-omp: interrupted (SIGINT) after training'
    expect_status 0 "the model saved while signalled loads" -- "$prog" --load \
        "$work/signalled.model" --epochs 0 --test-size 10 -q
else
    wait "$pid"
    echo "the run ended before the signal could be sent: that case is skipped"
fi

testlib_finish "outputs: types, links, modes, long names, early and late failures, stdout and signals OK"
