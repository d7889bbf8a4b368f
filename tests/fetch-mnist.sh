#!/bin/sh
# Test data/fetch-mnist against a local HTTP server (python3 -m http.server on
# 127.0.0.1) that serves copies of the shipped .gz files, good and broken.
# Runs every case with the first of curl and wget found, and the download
# cases again with wget when both are installed.  Exit status: 0 pass, 1 fail, 77 skip.

set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
data=$srcdir/data
fetch=$data/fetch-mnist
names='train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte'

if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found (needed for the local HTTP server)"
    exit 77
fi
tools=
for t in curl wget; do
    if command -v "$t" >/dev/null 2>&1; then tools="$tools $t"; fi
done
if [ -z "$tools" ]; then
    echo "SKIP: neither curl nor wget found"
    exit 77
fi

for n in $names; do
    if [ ! -r "$data/$n.gz" ]; then
        echo "FAIL: $data/$n.gz is missing"
        exit 1
    fi
done

# Keep the user's proxy and client configuration out of the way.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
    WGETRC CURL_HOME MNIST_MIRROR FETCH_MNIST_DOWNLOADER
no_proxy=127.0.0.1,localhost
NO_PROXY=$no_proxy
export no_proxy NO_PROXY

testlib_start fetch-mnist
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=
    fi
    rm -rf "$work"
}
trap cleanup 0
trap 'exit 1' HUP INT TERM
HOME=$work
export HOME

# ---------------------------------------------------------------- mirrors
# good/     the four shipped files
# corrupt/  t10k-labels is a sound gzip whose content has one label changed
# trunc/    t10k-labels is cut in half
# garbage/  t10k-labels has junk after the end of its gzip stream
# missing/  t10k-labels is absent (404)
# only/     t10k-labels alone
# empty/    nothing at all
srv=$work/srv
mkdir "$srv" "$srv/good" "$srv/corrupt" "$srv/trunc" "$srv/garbage" \
    "$srv/missing" "$srv/only" "$srv/empty" || exit 1
for n in $names; do
    cp "$data/$n.gz" "$srv/good/$n.gz" || exit 1
    for m in corrupt trunc garbage missing; do
        [ "$n" = t10k-labels-idx1-ubyte ] ||
            ln "$srv/good/$n.gz" "$srv/$m/$n.gz" 2>/dev/null ||
            cp "$srv/good/$n.gz" "$srv/$m/$n.gz" || exit 1
    done
done
cp "$srv/good/t10k-labels-idx1-ubyte.gz" "$srv/only/" || exit 1
python3 - "$srv/good/t10k-labels-idx1-ubyte.gz" "$srv" <<'EOF' || exit 1
import gzip, sys
src, srv = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
data = bytearray(gzip.decompress(raw))
data[-1] = (data[-1] + 1) % 10          # still a valid label, but wrong
with open(srv + "/corrupt/t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(gzip.compress(bytes(data)))
with open(srv + "/trunc/t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(raw[: len(raw) // 2])
with open(srv + "/garbage/t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(raw + b"<html>junk</html>\n")
EOF

# ---------------------------------------------------------------- server

token=ready-$$-$(date +%s)
printf '%s\n' "$token" >"$srv/ready.txt"

probe() {
    python3 -c '
import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip()
sys.exit(0 if body == sys.argv[2] else 1)' \
        "http://127.0.0.1:$port/ready.txt" "$token" >/dev/null 2>&1
}

# An unused TCP port of 127.0.0.1.
free_port() {
    python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start_server() {
    attempt=0
    while [ "$attempt" -lt 5 ]; do
        attempt=$((attempt + 1))
        port=$(free_port) || continue
        (cd "$srv" && exec python3 -m http.server --bind 127.0.0.1 "$port") \
            >"$work/server.log" 2>&1 &
        server_pid=$!
        i=0
        while [ "$i" -lt 50 ]; do
            # The token proves that our server answers, not another one.
            if probe; then return 0; fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
            i=$((i + 1))
        done
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=
    done
    return 1
}

if ! start_server; then
    echo "FAIL: cannot start python3 -m http.server on 127.0.0.1"
    cat "$work/server.log" 2>/dev/null
    exit 1
fi
url=http://127.0.0.1:$port

# ---------------------------------------------------------------- helpers

# A bound on each run of the script, on top of its own download timeouts.
if timeout -k 5 60 true >/dev/null 2>&1; then
    limit='timeout -k 5 60'
elif timeout 60 true >/dev/null 2>&1; then
    limit='timeout 60'
else
    limit=
fi

# fetch ARGS...: run the script with $tool; output in $out, status in $rc.
out=$work/out
fetch() {
    # shellcheck disable=SC2086 # $limit is a command prefix or nothing
    FETCH_MNIST_DOWNLOADER=$tool $limit sh "$fetch" "$@" >"$out" 2>&1
    rc=$?
}

show() {
    sed 's/^/    | /' "$out"
}

# expect_rc WANT WHAT
expect_rc() {
    if [ "$rc" -ne "$1" ]; then
        fail "[$tool] $2: exit status $rc, expected $1"
        show
        return 1
    fi
    return 0
}

# expect_files DIR NAME...: DIR holds exactly NAME.gz... (no temp files),
# each identical to the shipped file.
expect_files() {
    d=$1
    shift
    want=$(for n in "$@"; do echo "$n.gz"; done | sort | tr '\n' ' ')
    have=$(ls -A "$d" 2>/dev/null | sort | tr '\n' ' ')
    if [ "$have" != "$want" ]; then
        fail "[$tool] $d holds: [ $have]; expected: [ $want]"
        return 1
    fi
    for n in "$@"; do
        if ! cmp -s "$data/$n.gz" "$d/$n.gz"; then
            fail "[$tool] $d/$n.gz differs from the shipped file"
            return 1
        fi
    done
    return 0
}

# expect_output PATTERN WHAT
expect_output() {
    if ! grep -q -- "$1" "$out"; then
        fail "[$tool] $2: output does not mention '$1'"
        show
    fi
}

all_but_t10k_labels='train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte'

# ---------------------------------------------------------------- cases

# case_b MIRROR: t10k-labels from MIRROR must be rejected.
case_b() {
    mkdir -p "$t/b-$1"
    fetch --base-url "$url/$1" "$t/b-$1"
    expect_rc 1 "(b) $1 t10k-labels" &&
        expect_files "$t/b-$1" $all_but_t10k_labels &&
        expect_output 't10k-labels-idx1-ubyte.gz: verification failed' "(b) $1"
}

download_cases() {
    t=$work/$tool

    # (a) Download into an empty directory.
    mkdir -p "$t/a"
    fetch --base-url "$url/good/" "$t/a"
    expect_rc 0 "(a) download into an empty directory" &&
        expect_files "$t/a" $names

    # (b) A sound gzip with the wrong content is rejected and deleted; the
    # other files are kept.  (Truncated and padded ones: see once_cases.)
    case_b corrupt

    # (c) A 404 fails and leaves nothing behind for that file; an
    # unreachable server fails and leaves nothing at all.
    mkdir -p "$t/c"
    fetch --base-url "$url/missing/" "$t/c"
    expect_rc 1 "(c) 404 for t10k-labels" &&
        expect_files "$t/c" $all_but_t10k_labels &&
        expect_output 't10k-labels-idx1-ubyte.gz: download .* failed' "(c) 404"

    dead_port=$(free_port)
    fetch --base-url "http://127.0.0.1:$dead_port/" "$t/c-dead"
    expect_rc 1 "(c) unreachable server" &&
        expect_files "$t/c-dead"
}

# Cases that do not depend on the download tool: run with the first one only.
once_cases() {
    t=$work/$tool

    # (b) A truncated gzip is rejected as well, and so is one with junk
    # after the end of the compressed stream.
    case_b trunc
    case_b garbage

    # (d) A re-run skips the valid files: nothing can be downloaded from
    # empty/, so success means nothing was fetched.
    fetch --base-url "$url/empty/" "$t/a"
    expect_rc 0 "(d) re-run over valid files" &&
        expect_files "$t/a" $names &&
        expect_output 'present and valid, skipped' "(d) re-run"

    # (d) Only what is missing is fetched (only/ has t10k-labels alone); the
    # mirror comes from MNIST_MIRROR here.
    MNIST_MIRROR=$url/only/ fetch "$t/c"
    expect_rc 0 "(d) completing a partial directory" &&
        expect_files "$t/c" $names

    # (d) A present file that does not verify is downloaded again.
    cp "$srv/corrupt/t10k-labels-idx1-ubyte.gz" "$t/c/"
    fetch --base-url "$url/only/" "$t/c"
    expect_rc 0 "(d) replacing an invalid file" &&
        expect_files "$t/c" $names

    # --force downloads even valid files: from empty/ it must fail, and the
    # valid files must survive the failed downloads.
    fetch --force --base-url "$url/empty/" "$t/a"
    expect_rc 1 "--force over valid files from an empty mirror" &&
        expect_files "$t/a" $names

    # --sums: the shipped SHA256SUMS works; a list with one wrong sum
    # rejects that file.
    fetch --force --sums "$data/SHA256SUMS" --base-url "$url/good/" "$t/a"
    expect_rc 0 "--sums with the shipped SHA256SUMS" &&
        expect_files "$t/a" $names
    awk '/train-labels/ { c = substr($0, 1, 1); $0 = (c == "0" ? "1" : "0") substr($0, 2) } 1' \
        "$data/SHA256SUMS" >"$work/badsums"
    mkdir -p "$t/s"
    fetch --sums "$work/badsums" --base-url "$url/good/" "$t/s"
    expect_rc 1 "--sums with a wrong sum for train-labels" &&
        expect_files "$t/s" train-images-idx3-ubyte t10k-images-idx3-ubyte \
            t10k-labels-idx1-ubyte

    # Usage errors exit 2 and download nothing.
    fetch --help
    expect_rc 0 "--help" && expect_output '^Usage: fetch-mnist' "--help"
    fetch --bogus
    expect_rc 2 "unknown option"
    fetch "$t/u1" "$t/u2"
    expect_rc 2 "two directories"
    fetch --sums "$work/no-such-file" "$t/u1"
    expect_rc 2 "unreadable --sums file"
    if [ -e "$t/u1" ] || [ -e "$t/u2" ]; then
        fail "[$tool] a usage error created a directory"
    fi
}

first=1
for tool in $tools; do
    download_cases
    if [ "$first" -eq 1 ]; then
        once_cases
        first=0
    fi
done

testlib_finish "PASS: fetch-mnist with:$tools"
