#!/bin/sh
# Checks the shipped MNIST against data/SHA256SUMS, which lists the SHA-256 of
# each file decompressed (what the loaders read, whatever gzip level or header
# the archive got).  Every listed file must be there and match, and every
# shipped .gz must be listed.  Exit status: 0 all good, 1 a mismatch, 77 (skip)
# without a SHA-256 tool, 99 (hard error) when SHA256SUMS cannot be read.

data="${srcdir:-.}/data"
sums="$data/SHA256SUMS"

if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256; }
else
    echo "data-checksums.sh: no sha256sum or shasum; skipping" >&2
    exit 77
fi

if [ ! -r "$sums" ]; then
    echo "data-checksums.sh: cannot read $sums" >&2
    exit 99
fi

status=0

while read -r expected name; do
    [ -n "$name" ] || continue
    file="$data/$name.gz"
    if [ ! -f "$file" ]; then
        echo "FAIL: $file is missing" >&2
        status=1
        continue
    fi
    # A gzip error leaves partial output, whose digest cannot match.
    actual=$(gzip -dc "$file" | sha256 | cut -d ' ' -f 1)
    if [ "$actual" = "$expected" ]; then
        echo "ok: $file"
    else
        echo "FAIL: $file decompresses to SHA-256 $actual, SHA256SUMS says $expected" >&2
        status=1
    fi
done < "$sums"

for file in "$data"/*.gz; do
    [ -f "$file" ] || continue
    name=$(basename "$file" .gz)
    if ! awk -v name="$name" '$2 == name { found = 1 } END { exit !found }' "$sums"; then
        echo "FAIL: $file has no entry in $sums" >&2
        status=1
    fi
done

exit $status
