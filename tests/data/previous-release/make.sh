#!/bin/bash
# The database of tests/previous_release.rs: an earlier release's binary
# (BIN) serves the bundled digits zoo, compares three models and evaluates
# a fourth; its database and what its CLI answered (`--format json`) are
# kept here. This one was made by the release before the domain records
# (commit 55c0b26), whose rows hold protobuf reports (row format 0).
#
#   git worktree add /tmp/prev 55c0b26
#   (cd /tmp/prev && cargo build --release) && cp /tmp/prev/target/release/embedeval /tmp/embedeval-prev
#   BIN=/tmp/embedeval-prev tests/data/previous-release/make.sh
set -e
BIN=${BIN:?the earlier release's embedeval binary}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
D=$(mktemp -d)
cd "$root"
$BIN serve --addr 127.0.0.1:50999 --models-dir models --datasets-dir datasets --data-dir $D/data > $D/serve.log 2>&1 &
PID=$!
for i in $(seq 1 120); do $BIN health --server 127.0.0.1:50999 >/dev/null 2>&1 && break; sleep 1; done
$BIN compare infonce-t0.1 infonce-t0.5 simple --dataset digits --server 127.0.0.1:50999 > $D/compare.txt
$BIN eval infonce-t0.2 --dataset digits --server 127.0.0.1:50999 > $D/eval.txt
$BIN evaluations ls --dataset digits --server 127.0.0.1:50999 --format json > $D/evaluations.json
$BIN comparisons ls --server 127.0.0.1:50999 --format json > $D/comparisons.json
kill $PID; wait $PID || true
cp "$D/data/embedeval.db" "$D/evaluations.json" "$D/comparisons.json" "$here/"
rm -rf "$D"
