#!/bin/sh
# End-to-end checks of the mnist-omp command line on the shipped data:
# option errors, the output format, the CSV log, and printed losses that
# equal the serial reference's.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
. "$srcdir/tests/data-helpers.sh"
testlib_start cli

# --- help and version
expect_status 0 "--help" -- "$prog" --help
for option in --data --train-size --test-size --epochs --lr --hidden --seed --threads \
              --precision --engine --print-every --log --quiet --help --version \
              --activation --loss --batch --optimizer --momentum --nesterov --weight-decay \
              --beta1 --beta2 --eps --schedule --step-epochs --step-gamma --eval-every; do
    expect_in "$work/out" "^ .*$option "
done
expect_status 0 "--version" -- "$prog" --version
expect_in "$work/out" '^mnist-omp [0-9]'

# --- usage errors: one line saying what was wrong, the hint to the command's
# own --help, status 2
check_usage_error() {
    case $1 in
    bench | predict | export) command="mnist-omp $1" ;;
    *) command=mnist-omp ;;
    esac
    expect_status 2 "$*" -- "$prog" "$@"
    expect_in "$work/err" "^$command: "
    expect_in "$work/err" "Try '$command --help'"
}
check_usage_error --epochs 0
check_usage_error --epochs -3
check_usage_error --epochs 12abc
check_usage_error --lr -0.1
check_usage_error --lr nan
check_usage_error --hidden 0
check_usage_error --threads 0
check_usage_error --print-every 0
check_usage_error --precision f16
check_usage_error --engine gpu
check_usage_error --train-size 0
check_usage_error --train-size 60001 --epochs 1
expect_in "$work/err" 'larger than the 60000 images'
check_usage_error --test-size 10001 --epochs 1
check_usage_error --no-such-option
expect_in "$work/err" "unrecognized option '--no-such-option'"
check_usage_error --epochs
expect_in "$work/err" "missing argument to option '--epochs'"
# numbers are plain decimal: no blank, sign, hex, inf or nan
for value in " 10" "+10" "10 " 0x10 1e2 -0; do
    check_usage_error --epochs "$value"
    expect_in "$work/err" "--epochs: '$value' is not a whole number"
done
for value in 0x10 +0.5 " 0.5" inf infinity nan . 1e 1e+ 0.5x; do
    check_usage_error --lr "$value"
    expect_in "$work/err" "--lr: '$value' is not a finite decimal number"
done
check_usage_error --seed +5
check_usage_error --s 5
expect_in "$work/err" "option '--s' is ambiguous: it could be '--schedule', '--step-epochs', '--step-gamma', '--seed', '--save', '--show'"
check_usage_error --check=c
expect_in "$work/err" "option '--check' is ambiguous: it could be '--checkpoint', '--checkpoint-every'"
check_usage_error -x
expect_in "$work/err" "unrecognized option '-x'"
check_usage_error -qx
expect_in "$work/err" "unrecognized option '-x'"
check_usage_error --quiet=yes
expect_in "$work/err" "option '--quiet' takes no argument"
check_usage_error --qui=yes
expect_in "$work/err" "option '--quiet' takes no argument"
check_usage_error stray-argument

# --- the options of the general trainer (SPEC part 2): each value that makes
# no sense is one line naming the option and what was wrong
# usage_message MESSAGE OPTION...: a usage error whose first line is exactly
# "mnist-omp: MESSAGE".
usage_message() {
    message=$1
    shift
    check_usage_error "$@"
    [ "$(head -n 1 "$work/err")" = "mnist-omp: $message" ] ||
        fail "$*: said '$(head -n 1 "$work/err")', expected 'mnist-omp: $message'"
}
for list in 32,,8 32, ,32 , 8,,; do
    usage_message "--hidden: empty item in the list '$list'" --hidden "$list"
done
usage_message "--hidden: empty list" --hidden ""
usage_message "--hidden: '0' is not a whole number from 1 to 1048576" --hidden 32,0
usage_message "--hidden: '1048577' is not a whole number from 1 to 1048576" --hidden 1048577
usage_message "--hidden: ' 8' is not a whole number from 1 to 1048576" --hidden "32, 8"
usage_message "--hidden: '-8' is not a whole number from 1 to 1048576" --hidden 32,-8
layers64=$(printf '1,%.0s' $(seq 63))1
usage_message "--hidden: more than 63 hidden layers in '$layers64'" --hidden "$layers64"
usage_message "--activation: 'relu6' is not relu, tanh or sigmoid" --activation relu6
usage_message "--loss: 'hinge' is not mse or xent" --loss hinge
usage_message "--optimizer: 'rmsprop' is not sgd, adam or adamw" --optimizer rmsprop
usage_message "--schedule: 'linear' is not constant, cosine or step" --schedule linear
for batch in 0 -1 1.5 al; do
    usage_message "--batch: '$batch' is neither a positive number of images nor 'all'" --batch "$batch"
done
for value in 1 1.0 -0.5 2 nan; do
    usage_message "--momentum: '$value' is not a finite decimal number from 0 to below 1" \
        --momentum "$value"
    usage_message "--beta1: '$value' is not a finite decimal number from 0 to below 1" \
        --optimizer adam --beta1 "$value"
    usage_message "--beta2: '$value' is not a finite decimal number from 0 to below 1" \
        --optimizer adamw --beta2 "$value"
done
for value in 0 -1e-8 0.0 inf; do
    usage_message "--eps: '$value' is not a finite decimal number > 0" --optimizer adam --eps "$value"
    usage_message "--step-gamma: '$value' is not a finite decimal number > 0" \
        --schedule step --step-epochs 5 --step-gamma "$value"
done
usage_message "--weight-decay: '-0.1' is not a finite decimal number >= 0" --weight-decay -0.1
usage_message "--step-epochs: '0' is not a whole number from 1 to 100000000" \
    --schedule step --step-epochs 0 --step-gamma 0.5
usage_message "--eval-every: '0' is not a whole number from 1 to 100000000" --eval-every 0
usage_message "--nesterov needs --momentum greater than 0" --nesterov
usage_message "--nesterov needs --momentum greater than 0" --nesterov --momentum 0
usage_message "--schedule step needs --step-epochs E and --step-gamma G" --schedule step
usage_message "--schedule step needs --step-epochs E and --step-gamma G" --schedule step \
    --step-epochs 5
usage_message "--schedule step needs --step-epochs E and --step-gamma G" --schedule step \
    --step-gamma 0.5
usage_message "--step-epochs applies only to --schedule step" --step-epochs 5
usage_message "--step-gamma applies only to --schedule step" --schedule cosine --step-gamma 0.5
for option in --beta1 --beta2 --eps; do
    usage_message "$option applies only to --optimizer adam or adamw, not sgd" "$option" 0.5
done
usage_message "--momentum applies only to --optimizer sgd (adam's is --beta1), not adam" \
    --optimizer adam --momentum 0.9
usage_message "--momentum applies only to --optimizer sgd (adam's is --beta1), not adamw" \
    --momentum 0 --optimizer adamw
usage_message "--nesterov applies only to --optimizer sgd, not adam" --optimizer adam --nesterov
# a network whose arrays cannot fit in memory is refused before anything is
# allocated (or any data read: there is none here)
check_usage_error --hidden 1048576,1048576 --data "$work/nowhere"
expect_in "$work/err" "^mnist-omp: --hidden: the network's 1100346294282 parameters would need [0-9.e+]* GB in float32 for its [0-9]* arrays, more than this machine's [0-9.e+]* GB of memory$"

# --- data errors: status 1, naming the place
expect_status 1 "missing data dir" -- "$prog" --data "$work/nowhere" --epochs 1
expect_in "$work/err" "$work/nowhere"

# --- a short run: format and log
expect_status 0 "short run" -- "$prog" --epochs 21 --train-size 300 --test-size 100 \
    --precision f64 --log "$work/log.csv"
out=$work/out
cp "$out" "$work/omp.out"
expect_in "$out" '^mnist-omp: 784-32-10 ReLU MLP'
expect_in "$out" '(train 300 of 60000, test 100 of 10000, seed 1337)'
expect_in "$out" 'float64, engine omp, [0-9]* thread'
expect_in "$out" '^Epoch: 0  Loss: 0\.[0-9]'
expect_in "$out" '^Epoch: 10  Loss: '
expect_in "$out" '^Epoch: 20  Loss: '
[ "$(grep -c '^Epoch: ' "$out")" -eq 3 ] || fail "expected 3 epoch lines"
expect_in "$out" '^Training time: [0-9.]* s ([0-9.]* ms/epoch, [0-9.]* GFLOP/s)$'
expect_in "$out" '^Test Set Accuracy = [0-9.]*% ([0-9]* of 100)$'
expect_in "$out" '^Softmax of the first training image (label [0-9], predicted [0-9]):\( 0\.[0-9]\{4\}\)\{10\}$'
expect_in "$out" '^Softmax of the first test image (label [0-9], predicted [0-9]):'
expect_in "$out" '^First [0-9]* misclassified test images (of [0-9]*):$'
[ "$(head -n 1 "$work/log.csv")" = "epoch,loss,seconds,test_accuracy" ] || fail "log header"
[ "$(wc -l <"$work/log.csv")" -eq 22 ] || fail "log should have 21 epochs"
# Without --eval-every only the last epoch is evaluated: its accuracy is the
# one printed at the end.
awk -F, 'NR > 1 && (NF != 4 || $1 != NR - 2 || $2 !~ /^[0-9.e-]+$/ ||
                    (NR < 22 && $4 != "") || (NR == 22 && $4 !~ /^[0-9]+\.[0-9][0-9]$/)) { bad = 1 }
         END { exit bad }' "$work/log.csv" || fail "malformed log line"
final=$(sed -n 's/^Test Set Accuracy = \([0-9.]*\)%.*/\1/p' "$out")
logged_final=$(awk -F, 'NR == 22 { printf "%.1f", $4 }' "$work/log.csv")
[ "$final" = "$logged_final" ] || fail "the log's last accuracy $logged_final is not the printed $final"
# The printed loss is the logged loss (17 digits) rounded to 16.
logged=$(awk -F, 'NR == 12 { printf "%.16g", $2 }' "$work/log.csv")
expect_in "$out" "^Epoch: 10  Loss: $logged\$"

# --- the engine prints the serial reference's losses (to 12 significant digits)
expect_status 0 "reference engine" -- "$prog" --epochs 21 --train-size 300 --test-size 100 \
    --precision f64 --engine reference
expect_in "$work/out" '^Training: .*engine reference (serial), 1 thread$'
grep '^Epoch: ' "$work/omp.out" >"$work/omp.loss"
grep '^Epoch: ' "$work/out" >"$work/ref.loss"
paste "$work/omp.loss" "$work/ref.loss" | awk '
    { a = $4; b = $8; d = a - b; if (d < 0) d = -d
      if ($2 != $6 || d > 1e-12 * b) { print "epoch " $2 ": " a " vs " b; bad = 1 } }
    END { exit bad || NR != 3 }' || fail "engine and reference losses differ"

# --- thread count does not change a single printed digit
expect_status 0 "1 thread" -- "$prog" --epochs 12 --train-size 500 --test-size 50 --threads 1
grep -v -e '^Training' -e ' thread' "$work/out" >"$work/t1"
expect_status 0 "3 threads" -- "$prog" --epochs 12 --train-size 500 --test-size 50 --threads 3
grep -v -e '^Training' -e ' thread' "$work/out" >"$work/t3"
cmp -s "$work/t1" "$work/t3" || fail "output differs between 1 and 3 threads"

# --- divergence: named epoch, advice, status 1
expect_status 1 "divergence" -- "$prog" --epochs 50 --train-size 100 --test-size 10 --lr 1e6
expect_in "$work/err" 'diverged.*at epoch [0-9]*.*smaller learning rate'

# --- an unwritable log is an error, not a silent loss
expect_status 1 "unwritable log" -- "$prog" --epochs 1 --train-size 10 --test-size 10 \
    --log "$work/no/such/dir/log.csv"
expect_in "$work/err" 'log.csv: cannot write in .*/no/such/dir: No such file or directory'

# --- model files: save, load to evaluate, resume equal to an uninterrupted run
small="--train-size 400 --test-size 100"
expect_status 0 "save" -- "$prog" $small --epochs 20 --save "$work/full.model" --quiet
grep '^Test Set Accuracy' "$work/out" >"$work/accuracy.saved"
expect_status 0 "load and evaluate" -- "$prog" $small --epochs 0 --load "$work/full.model"
expect_in "$work/out" "^Start:     $work/full.model (20 epochs done)"
grep '^Test Set Accuracy' "$work/out" | cmp -s - "$work/accuracy.saved" ||
    fail "a loaded model evaluates differently from the one saved"
expect_status 0 "checkpointed run" -- "$prog" $small --epochs 12 --checkpoint "$work/run.ckpt" \
    --checkpoint-every 5 --quiet
expect_status 0 "resume" -- "$prog" $small --epochs 20 --resume "$work/run.ckpt" \
    --save "$work/resumed.model"
expect_in "$work/out" "^Start:     $work/run.ckpt (12 epochs done)"
cmp -s "$work/full.model" "$work/resumed.model" ||
    fail "a resumed run does not end bitwise equal to an uninterrupted one"
expect_status 2 "resume with another lr" -- "$prog" $small --epochs 20 --lr 0.5 \
    --resume "$work/run.ckpt"
expect_in "$work/err" 'was made with --lr 0.8'
expect_status 1 "resume from a model" -- "$prog" $small --epochs 20 --resume "$work/full.model"
expect_in "$work/err" 'not a checkpoint'
# a checkpoint's training size that the data cannot provide is the file's fault
make_idx_dir "$work/small-data" 300 100 || fail "cannot make a small data directory"
expect_status 1 "resume on too little data" -- "$prog" --epochs 20 --resume "$work/run.ckpt" \
    --data "$work/small-data"
expect_in "$work/err" "^mnist-omp: $work/run.ckpt: the checkpoint was made with --train-size 400, more than the 300 images in $work/small-data"
! grep -q 'Try ' "$work/err" || fail "a checkpoint's training size is no usage error"
# a checkpoint resumes only on the data it was made on
make_idx_dir "$work/other-data" 500 100 || fail "cannot make another data directory"
expect_status 1 "resume on other data" -- "$prog" --epochs 20 --resume "$work/run.ckpt" \
    --data "$work/other-data"
expect_in "$work/err" "^mnist-omp: $work/run.ckpt: the checkpoint was made on other training images than the 400 drawn now from $work/other-data"
# mini-batch Adam: stopped after 3 epochs and resumed to 6, a run ends
# bitwise equal to one that ran 6 straight (the optimiser's moments and step,
# the shuffles' random stream); the resumed run repeats every setting of the
# checkpoint without being told
adam="$small --batch 64 --optimizer adam --lr 0.001 --loss xent --hidden 24,12"
expect_status 0 "adam, 6 epochs" -- "$prog" $adam --epochs 6 --save "$work/adam6.model"
expect_in "$work/out" '^mnist-omp: 784-24-12-10 ReLU MLP, cross-entropy loss, batches of 64, Adam (beta1 0.9, beta2 0.999, eps 1e-08, weight decay 0)$'
expect_status 0 "adam, 3 epochs" -- "$prog" $adam --epochs 3 --checkpoint "$work/adam.ckpt" --quiet
expect_status 0 "adam, resumed to 6" -- "$prog" --epochs 6 --resume "$work/adam.ckpt" \
    --save "$work/adam-resumed.model" --print-every 1
expect_in "$work/out" '^Epoch: 3  Loss: '
cmp -s "$work/adam6.model" "$work/adam-resumed.model" ||
    fail "a resumed mini-batch Adam run does not end bitwise equal to an uninterrupted one"
# the checkpoint's settings given again are accepted
expect_status 0 "adam, resumed with its settings given" -- "$prog" $adam --epochs 6 \
    --beta1 0.9 --beta2 0.999 --eps 1e-8 --weight-decay 0 --resume "$work/adam.ckpt" \
    --save "$work/adam-resumed2.model" --quiet
cmp -s "$work/adam6.model" "$work/adam-resumed2.model" ||
    fail "resuming with the checkpoint's settings given changed the result"
# momentum, Nesterov, weight decay and a step schedule, likewise
sgd="$small --batch 50 --momentum 0.9 --nesterov --weight-decay 0.0001 --lr 0.05 --schedule step --step-epochs 2 --step-gamma 0.5 --activation tanh"
expect_status 0 "nesterov, 5 epochs" -- "$prog" $sgd --epochs 5 --save "$work/sgd5.model" --quiet
expect_status 0 "nesterov, 3 epochs" -- "$prog" $sgd --epochs 3 --checkpoint "$work/sgd.ckpt" --quiet
expect_status 0 "nesterov, resumed to 5" -- "$prog" --epochs 5 --resume "$work/sgd.ckpt" \
    --save "$work/sgd-resumed.model" --quiet
cmp -s "$work/sgd5.model" "$work/sgd-resumed.model" ||
    fail "a resumed momentum/Nesterov/step run does not end bitwise equal to an uninterrupted one"
# settings that differ from the checkpoint's are refused, naming the file's
resume_refused() {
    message=$1 ckpt=$2
    shift 2
    expect_status 2 "resume $*" -- "$prog" --epochs 6 --resume "$ckpt" "$@"
    [ "$(head -n 1 "$work/err")" = "mnist-omp: $message" ] ||
        fail "resume $*: said '$(head -n 1 "$work/err")', expected 'mnist-omp: $message'"
}
a=$work/adam.ckpt
resume_refused "--optimizer: $a was made with --optimizer adam" "$a" --optimizer adamw
resume_refused "--batch: $a was made with --batch 64" "$a" --batch 32
resume_refused "--batch: $a was made with --batch 64" "$a" --batch all
resume_refused "--lr: $a was made with --lr 0.001" "$a" --lr 0.01
resume_refused "--beta1: $a was made with --beta1 0.9" "$a" --beta1 0.8
resume_refused "--beta2: $a was made with --beta2 0.999" "$a" --beta2 0.99
resume_refused "--eps: $a was made with --eps 1e-08" "$a" --eps 1e-7
resume_refused "--weight-decay: $a was made with --weight-decay 0" "$a" --weight-decay 0.01
resume_refused "--hidden: $a was made with --hidden 24,12" "$a" --hidden 24
resume_refused "--loss: $a was made with --loss xent" "$a" --loss mse
resume_refused "--activation: $a was made with --activation relu" "$a" --activation sigmoid
resume_refused "--schedule: $a was made with --schedule constant" "$a" --schedule cosine
resume_refused "--momentum applies only to --optimizer sgd (adam's is --beta1), not adam" "$a" \
    --momentum 0.9
g=$work/sgd.ckpt
resume_refused "--momentum: $g was made with --momentum 0.9" "$g" --momentum 0.8
resume_refused "--step-gamma: $g was made with --step-gamma 0.5" "$g" --step-gamma 0.1
resume_refused "--step-epochs: $g was made with --step-epochs 2" "$g" --step-epochs 3
resume_refused "--schedule: $g was made with --schedule step" "$g" --schedule constant
resume_refused "--beta1 applies only to --optimizer adam or adamw, not sgd" "$g" --beta1 0.9
resume_refused "--nesterov: $work/run.ckpt was made without --nesterov" "$work/run.ckpt" \
    --momentum 0 --nesterov
# --load takes the file's network, which options given must agree with, and
# starts a new run of its own settings, numbered on
expect_status 2 "load with another network" -- "$prog" $small --epochs 1 --load "$work/adam6.model" \
    --hidden 24
expect_in "$work/err" "^mnist-omp: --hidden: $work/adam6.model was made with --hidden 24,12$"
expect_status 2 "load with another activation" -- "$prog" $small --epochs 1 \
    --load "$work/adam6.model" --activation tanh
expect_in "$work/err" "^mnist-omp: --activation: $work/adam6.model was made with --activation relu$"
expect_status 0 "load and train on with SGD" -- "$prog" $small --epochs 2 --load "$work/adam6.model" \
    --batch 32 --lr 0.05 --momentum 0.5 --print-every 1
expect_in "$work/out" '^mnist-omp: 784-24-12-10 ReLU MLP, cross-entropy loss, batches of 32, SGD (momentum 0.5, weight decay 0)$'
expect_in "$work/out" "^Start:     $work/adam6.model (6 epochs done)"
[ "$(grep '^Epoch: ' "$work/out" | cut -d' ' -f2 | tr '\n' ' ')" = "6 7 " ] ||
    fail "--load of a 6-epoch model, --epochs 2: expected epochs 6 and 7, got $(grep -c '^Epoch: ' "$work/out") lines"

# --eval-every K: the accuracy after every K-th epoch and the last, on the
# epoch lines and in the log; the last is the result printed at the end
expect_status 0 "eval-every" -- "$prog" $small --epochs 5 --eval-every 2 --print-every 100 \
    --log "$work/eval.csv" --batch 100 --loss xent
[ "$(grep -c '^Epoch: ' "$work/out")" -eq 4 ] || fail "--eval-every 2: expected epochs 0, 1, 3 and 4 printed"
expect_in "$work/out" '^Epoch: 0  Loss: [0-9.e-]*$'
expect_in "$work/out" '^Epoch: 1  Loss: [0-9.e-]*  Test accuracy: [0-9]*\.[0-9][0-9]%$'
expect_in "$work/out" '^Epoch: 3  Loss: [0-9.e-]*  Test accuracy: [0-9]*\.[0-9][0-9]%$'
awk -F, 'NR > 1 { if (($1 == 1 || $1 == 3 || $1 == 4) != ($4 != "")) bad = 1 } END { exit bad || NR != 6 }' \
    "$work/eval.csv" || fail "--eval-every 2: the log's accuracies are not those of epochs 1, 3 and 4"
for epoch in 1 3 4; do
    logged=$(awk -F, -v e="$epoch" 'NR > 1 && $1 == e { print $4 }' "$work/eval.csv")
    expect_in "$work/out" "^Epoch: $epoch  Loss: .*  Test accuracy: $logged%\$"
done
last=$(awk -F, 'NR == 6 { printf "%.1f", $4 }' "$work/eval.csv")
expect_in "$work/out" "^Test Set Accuracy = $last% "

printf 'garbage' >"$work/garbage.model"
expect_status 1 "load garbage" -- "$prog" $small --epochs 0 --load "$work/garbage.model"
expect_in "$work/err" "garbage.model"
check_usage_error --checkpoint-every 5
check_usage_error --load a --resume b

# --- SIGINT and SIGTERM: finish the epoch, keep a checkpoint, say how to
# resume; a mini-batch Adam run resumed from it ends as one never interrupted
signal_run="--train-size 300 --test-size 10 --batch 64 --optimizer adam --lr 0.001"
for signal in INT TERM; do
    if [ "$signal" = INT ] && [ -z "$with_sigint" ]; then
        echo "env --default-signal is missing: the SIGINT case is skipped"
        continue
    fi
    $with_sigint "$prog" $signal_run --epochs 100000000 --print-every 1000000 \
        --checkpoint "$work/signal.ckpt" >"$work/out" 2>"$work/err" &
    pid=$!
    # Signal once training runs (epoch 0 is always printed), at most 20 s on.
    tries=0
    until grep -q '^Epoch: 0 ' "$work/out" || [ "$tries" -ge 200 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -s "$signal" "$pid"
    wait "$pid"
    got=$?
    want=130
    [ "$signal" = TERM ] && want=143
    [ "$got" -eq "$want" ] || fail "SIG$signal: exit status $got, expected $want"
    expect_in "$work/err" "--resume $work/signal.ckpt"
    done_epochs=$(sed -n 's/.*after epoch \([0-9]*\)\..*/\1/p' "$work/err")
    [ -n "$done_epochs" ] || { fail "SIG$signal: no epoch in: $(cat "$work/err")"; continue; }
    total=$((done_epochs + 1 + 3))
    expect_status 0 "resume after SIG$signal" -- "$prog" --epochs "$total" \
        --resume "$work/signal.ckpt" --save "$work/after-signal.model" --quiet
    expect_status 0 "uninterrupted" -- "$prog" $signal_run \
        --epochs "$total" --save "$work/uninterrupted.model" --quiet
    cmp -s "$work/after-signal.model" "$work/uninterrupted.model" ||
        fail "resuming after SIG$signal does not match an uninterrupted run"
done

# --- pictures and text art
expect_status 0 "plots" -- "$prog" $small --epochs 3 --plots "$work/plots" --show 2
for file in samples errors confusion; do
    [ -s "$work/plots/$file.png" ] || [ -s "$work/plots/$file.pgm" ] || fail "no $file picture"
done
[ -s "$work/plots/loss.svg" ] && [ -s "$work/plots/confusion.txt" ] || fail "no loss.svg"
grep -q '>test accuracy (%)</text>' "$work/plots/accuracy.svg" || fail "no accuracy.svg"
expect_in "$work/out" '^Training image 1: label [0-9]$'
expect_in "$work/out" '@@'

# --- predict: a PGM made from the first test image of the shipped data
real_pgm >"$work/seven.pgm"
expect_status 0 "predict" -- "$prog" predict --load "$work/full.model" "$work/seven.pgm"
expect_in "$work/out" "^$work/seven.pgm: [0-9] ([0-9.]*%)  probabilities:\( [0-9]:0\.[0-9]\{4\}\)\{10\}\$"
expect_status 1 "predict a missing image" -- "$prog" predict --load "$work/full.model" \
    "$work/none.pgm"
expect_in "$work/err" "none.pgm"
check_usage_error predict "$work/seven.pgm"
check_usage_error predict --load "$work/full.model"

# --- the benchmark runs and reports every combination (its figures are not judged here)
expect_status 0 "bench" -- "$prog" bench --sizes 300,500 --threads 1,2 --precision f32,f64 \
    --epochs 3 --warmup 1
[ "$(grep -c -E '^f(32|64) +(300|500) +[12] ' "$work/out")" -eq 8 ] || fail "bench table rows"
expect_in "$work/out" '^mnist-omp bench: 784-32-10'
# "cores" is the thread count training would use (3 here, 1 in a serial
# build), not the last one measured.
expect_status 0 "3 threads" -- env OMP_NUM_THREADS=3 "$prog" --epochs 1 --train-size 10 \
    --test-size 10
cores=$(sed -n 's/^Training: .* \([0-9]*\) threads*$/\1/p' "$work/out")
expect_status 0 "bench --json" -- env OMP_NUM_THREADS=3 "$prog" bench --sizes 300 --threads 1 \
    --precision f64 --epochs 2 --warmup 0 --json
expect_in "$work/out" '"size": 300, "precision": "f64", "threads": 1, "ms_per_epoch_median": '
expect_in "$work/out" '"fraction_of_peak": '
expect_in "$work/out" "\"cores\": ${cores:-unknown},"
expect_in "$work/out" '"omp_proc_bind_env": .*, "omp_places_env": .*, "proc_bind": "[a-z]*", "num_places": [0-9]*,$'
expect_in "$work/out" '{"thread": 0, "place": -*[0-9]*, "cpu": -*[0-9]*}'
expect_in "$work/out" '"suggested_threads": 1,$'
# the header: OMP_PROC_BIND and OMP_PLACES, how OpenMP binds, and where each
# thread of each count runs; below the table, the fastest count measured
expect_status 0 "bench placement" -- env OMP_PROC_BIND=close OMP_PLACES=cores "$prog" bench \
    --sizes 300 --threads 1,2 --precision f32 --epochs 2 --warmup 0
expect_in "$work/out" '^placement of 1 thread: t0 place -*[0-9]* cpu -*[0-9]*$'
expect_in "$work/out" '^suggested OMP_NUM_THREADS: [12] (fastest measured)$'
if [ "${cores:-}" = 3 ]; then  # an OpenMP build: binds, and runs two threads
    expect_in "$work/out" '^OMP_PROC_BIND: close, OMP_PLACES: cores; proc_bind: close, places: [1-9][0-9]*$'
    expect_in "$work/out" '^placement of 2 threads: t0 place [0-9]* cpu [0-9]*, t1 place [0-9]* cpu [0-9]*$'
else
    expect_in "$work/out" '^OMP_PROC_BIND: close, OMP_PLACES: cores; proc_bind: false, places: 0$'
    expect_in "$work/out" '^placement of 2 threads: t0 place -1 cpu -*[0-9]*$'
fi
expect_status 0 "bench placement, unset" -- sh -c 'unset OMP_PROC_BIND OMP_PLACES; exec "$0" "$@"' \
    "$prog" bench --sizes 300 --threads 1 --precision f32 --epochs 1 --warmup 0
expect_in "$work/out" '^OMP_PROC_BIND: unset, OMP_PLACES: unset; proc_bind: [a-z]*, places: [0-9]*$'
expect_in "$work/out" '^suggested OMP_NUM_THREADS: 1 (the only count measured)$'
check_usage_error bench --threads 0
check_usage_error bench --threads 99999
check_usage_error bench --sizes 70000
check_usage_error bench --precision f16
check_usage_error bench --bogus
expect_in "$work/err" "^mnist-omp bench: unrecognized option '--bogus'"
for list in 1,,2 ,1 1, ,; do
    check_usage_error bench --threads "$list"
    expect_in "$work/err" "--threads: empty item in the list"
done
check_usage_error bench --sizes ""
expect_in "$work/err" "--sizes: empty list"
expect_status 0 "bench --help" -- "$prog" bench --help
for option in --threads --sizes --precision --epochs --warmup --recipe --seed --list-recipes \
              --data --json; do
    expect_in "$work/out" "^ .*$option"
done

# --- bench --recipe: README's recipes through the trainer, timed and profiled
expect_status 0 "bench --list-recipes" -- "$prog" bench --list-recipes
[ "$(cut -d ' ' -f 1 "$work/out" | tr '\n' ' ')" = "a b c fast " ] ||
    fail "bench --list-recipes names: $(cut -d ' ' -f 1 "$work/out" | tr '\n' ' ')"
expect_in "$work/out" '^a --train-size all --test-size all --loss xent --hidden 128 '
check_usage_error bench --recipe d
expect_in "$work/err" "--recipe: no recipe 'd' (the recipes: a, b, c, fast)"
check_usage_error bench --recipe a,,c
expect_in "$work/err" "--recipe: empty item in the list"
check_usage_error bench --recipe ""
for option in "--hidden 64" "--batch 10" "--warmup 1"; do
    # shellcheck disable=SC2086
    check_usage_error bench --recipe a $option
    expect_in "$work/err" "${option% *} does not go with --recipe"
done
check_usage_error bench --recipe a --sizes 60001
check_usage_error bench --recipe a --seed x
check_usage_error bench --recipe a --epochs 0
# Every recipe at two thread counts, a tiny run: the last epoch profiled
# kernel by kernel, the first layer marked dense-equivalent.
expect_status 0 "bench --recipe" -- "$prog" bench --recipe a,b,c,fast --sizes 300 --epochs 2 \
    --threads 1,2
expect_in "$work/out" '^mnist-omp bench: recipes on '
[ "$(grep -c '^recipe ' "$work/out")" -eq 8 ] || fail "bench --recipe: runs"
expect_in "$work/out" '^recipe b: 784-512-512-10, f32, N = 300, 2 threads, 2 epochs; FMA peak '
expect_in "$work/out" '^  s/epoch [0-9.]* \[[0-9.]* - [0-9.]*\] of 1 epoch, training [0-9.]* s'
expect_in "$work/out" '^  test accuracy [0-9.]*% ([0-9]* of 10000); the last epoch, [0-9.]* s, profiled:'
[ "$(grep -c -E '^  0 784x[0-9]+\* +(forward|weight gradient) ' "$work/out")" -eq 16 ] ||
    fail "bench --recipe: the first layer's kernels"
[ "$(grep -c -E '^  [12] [0-9]+x[0-9]+ +(forward|weight gradient|input gradient) ' \
    "$work/out")" -eq 30 ] || fail "bench --recipe: the other layers' kernels"
[ "$(grep -c -E '^ +(update|other|idle or serial) +[0-9.]+ +[0-9.]+%$' "$work/out")" -eq 24 ] ||
    fail "bench --recipe: update, other and idle"
expect_in "$work/out" '^  mnist-omp .* --hidden 256 .*--nesterov .*--epochs 2 --seed 1337 --precision f32 --threads 1$'
# The JSON run trains what its command line trains, to the same bits.
expect_status 0 "bench --recipe --json" -- "$prog" bench --recipe fast --sizes 500 --epochs 1 \
    --threads 2 --seed 7 --precision f64 --json
expect_in "$work/out" '"recipe": "fast", '
expect_in "$work/out" '"network": "784-256-10", "precision": "f64", "size": 500, "threads": 2, "epochs": 1, "seed": 7,'
expect_in "$work/out" '"layer": 0, "n_in": 784, "n_out": 256, "kernel": "weight_gradient", "dense_equivalent": true, '
expect_in "$work/out" '"layer": 1, "n_in": 256, "n_out": 10, "kernel": "input_gradient", "dense_equivalent": false, '
expect_in "$work/out" '"steps": 4, "images": 500,'
correct=$(sed -n 's/.*"test_correct": \([0-9]*\),.*/\1/p' "$work/out")
command=$(sed -n 's/.*"command": "mnist-omp \([^"]*\)".*/\1/p' "$work/out")
# shellcheck disable=SC2086
expect_status 0 "the command of bench --recipe" -- "$prog" $command --quiet
expect_in "$work/out" "^Test Set Accuracy = .* (${correct:-none} of 10000)"
expect_status 0 "predict --help" -- "$prog" predict --help
expect_in "$work/out" '^Usage: mnist-omp predict'
check_usage_error predict --bogus
check_usage_error predict --load x.model --activation gelu x.pgm
expect_status 0 "export --help" -- "$prog" export --help
expect_in "$work/out" '^Usage: mnist-omp export --load FILE'
check_usage_error export --bogus
check_usage_error export --load x.model
check_usage_error export x.npz
check_usage_error export --load x.model a.npz b.npz
check_usage_error export --load x.model --activation gelu x.npz
check_usage_error export --load x.model --loss hinge x.npz

# --- counts of one are singular
expect_status 0 "one epoch" -- "$prog" --epochs 1 --train-size 100 --test-size 50 --threads 1
expect_in "$work/out" '^Training:  1 epoch, lr 0.8, float32, engine omp, 1 thread$'

# --- the header shows the threads OpenMP grants, not those asked for
expect_status 0 "thread limit" -- env OMP_THREAD_LIMIT=1 "$prog" --threads 8 --epochs 1 \
    --train-size 100 --test-size 50
expect_in "$work/out" ', 1 thread$'
expect_status 0 "thread limit, default threads" -- env OMP_THREAD_LIMIT=1 OMP_NUM_THREADS=4 \
    "$prog" --epochs 1 --train-size 100 --test-size 50
expect_in "$work/out" ', 1 thread$'

# --- on a 40-column terminal the progress line stays within 39 columns, so it
# never wraps (a wrapped line is left behind by the next redraw)
if script -qec true /dev/null >/dev/null 2>&1 </dev/null; then
    COLUMNS='' script -qec "stty cols 40 rows 20; '$prog' --epochs 30 --train-size 100 \
        --test-size 50 --print-every 1000" "$work/typescript" >/dev/null 2>&1 </dev/null ||
        fail "a run on a terminal failed"
    awk 'BEGIN { RS = "\r" } /^\033\[K(Epoch )?[0-9]+\// { n++; if (length($0) - 3 > 39) bad++ }
         END { exit !(n > 0 && bad == 0) }' "$work/typescript" ||
        fail "no progress line, or one wider than 39 columns, on a 40-column terminal"
fi

# --- --help: the environment, and what --resume restores
expect_status 0 "--help" -- "$prog" --help
for variable in MNIST_OMP_DATA OMP_NUM_THREADS OMP_THREAD_LIMIT MNIST_OMP_ISA; do
    expect_in "$work/out" "^  $variable "
done
expect_in "$work/out" "restores the parameters and the epochs done"

testlib_finish "cli: all checks passed"
