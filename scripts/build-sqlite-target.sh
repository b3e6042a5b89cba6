#!/usr/bin/env bash
# Builds the sqlite3 amalgamation as a libFuzzer target with the covd agent, for tests and
# benchmarks (about 47,000 PCs).
#   scripts/build-sqlite-target.sh [--no-agent] [--engine=afl] OUTPUT
# The amalgamation comes from the better-sqlite3 npm package (npm pack, no install), cached under
# build/sqlite/ with the compiled sqlite3.o, so only the first build is slow (a few minutes).
# --no-agent links plain libFuzzer (the benchmark's baseline) from the same object.
# --engine=afl builds an AFL++ target instead (`covd cc --engine=afl`; its own sqlite3.o, compiled
# with AFL++'s and the agent's instrumentation).
set -euo pipefail
cd "$(dirname "$0")/.."

agent=()
engine=()
while [ $# -gt 1 ]; do
  case "$1" in
    --no-agent) agent=(--no-agent); shift ;;
    --engine=afl) engine=(--engine=afl); shift ;;
    *) break ;;
  esac
done
out="${1:?usage: scripts/build-sqlite-target.sh [--no-agent] [--engine=afl] OUTPUT}"

version=12.11.1
dir=build/sqlite
cc="${COVD_CC:-clang-14}"
mkdir -p "$dir"

tgz="$dir/better-sqlite3-$version.tgz"
if [ ! -f "$tgz" ]; then
  (cd "$dir" && npm pack "better-sqlite3@$version" --silent >/dev/null)
fi
if [ ! -f "$dir/src-$version/sqlite3.c" ]; then
  rm -rf "$dir/src-$version.tmp" && mkdir -p "$dir/src-$version.tmp"
  tar -xzf "$tgz" -C "$dir/src-$version.tmp" --strip-components=3 package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
  rm -rf "$dir/src-$version" && mv "$dir/src-$version.tmp" "$dir/src-$version"
fi

# sqlite's own options: single-threaded, no extensions, small defaults; coverage without libFuzzer's main.
sqlite_flags=(-g -O1 -fsanitize=fuzzer-no-link -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION
  -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_MAX_EXPR_DEPTH=0 -DSQLITE_OMIT_DEPRECATED -DSQLITE_DQS=0
  -DSQLITE_ENABLE_MATH_FUNCTIONS)
if [ ${#engine[@]} -gt 0 ]; then
  sqlite_flags=("${sqlite_flags[@]/-fsanitize=fuzzer-no-link/-fsanitize-coverage=trace-pc-guard,inline-8bit-counters,pc-table}")
fi
key=$( (echo "$cc ${sqlite_flags[*]}"; "$cc" --version | head -1) | sha256sum | cut -c1-16)
obj="$dir/sqlite3-$version-$key.o"
if [ ! -f "$obj" ]; then
  echo "covd: compiling sqlite3.c (slow, once)" >&2
  nice -n 10 "$cc" "${sqlite_flags[@]}" -c "$dir/src-$version/sqlite3.c" -o "$obj.tmp.$$"
  mv "$obj.tmp.$$" "$obj"
fi

node bin/covd cc "${engine[@]}" "${agent[@]}" -O1 -I "$dir/src-$version" -o "$out" examples/sqlite/fuzz_sqlite.c "$obj"
