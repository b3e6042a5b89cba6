#!/usr/bin/env bash
# The agent's cost per input under AFL++ in instructions (valgrind's callgrind), which a busy
# shared machine cannot blur the way it blurs CPU seconds: bench/afl-loop.c runs an afl-fuzz
# queue through the tinyimg and sqlite targets, built as `covd cc --engine=afl` builds them but
# with the loop instead of libAFLDriver.a, with and without the agent. bench/NOTES-afl.md.
#   bash bench/afl-instructions.sh [REPS_TINYIMG=200] [REPS_SQLITE=3]
# Needs valgrind, AFL++ and a built tree (npm run build); takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
reps_t="${1:-200}"
reps_s="${2:-3}"
cc="${COVD_CC:-clang-14}"
afl="${AFL_PATH:-/usr/lib/afl}"
work="$(mktemp -d "${TMPDIR:-/tmp}/covd-afl-instr-XXXXXX")"
trap 'rm -rf "$work"' EXIT
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
cov=(-fsanitize-coverage=trace-pc-guard,inline-8bit-counters,pc-table)

# The agent as `covd cc` compiles it, without debug info (valgrind 3.19 cannot read clang-14's).
"$cc" -c -O2 -fPIC -fno-sanitize=all agent/covd_agent.c -o "$work/agent.o"
"$cc" -c -O2 bench/afl-loop.c -o "$work/loop.o"
wraps=(-Wl,--wrap=LLVMFuzzerTestOneInput -Wl,--wrap=_Exit -Wl,--wrap=__afl_manual_init)

# A queue for each target: one afl-fuzz run of the build without the agent, fixed seed.
queue() { # name exe seeds
  rm -rf "$work/in-$1" "$work/out-$1"
  cp -r "$3" "$work/in-$1"
  afl-fuzz -E "${4:-100000}" -s 12345 -i "$work/in-$1" -o "$work/out-$1" -- "$2" >/dev/null 2>&1
  echo "$work/out-$1/default/queue"
}

measure() { # name reps queue objects...
  local name=$1 reps=$2 q=$3
  shift 3
  "$cc" -O1 "${cov[@]}" "$work/loop.o" "$@" "$afl/afl-compiler-rt.o" -lm -o "$work/$name-plain"
  "$cc" -O1 "${cov[@]}" "$work/loop.o" "$@" "$work/agent.o" "$afl/afl-compiler-rt.o" "${wraps[@]}" -lm -o "$work/$name-agent"
  local n per_plain=0
  n=$(find "$q" -maxdepth 1 -type f | wc -l)
  for v in plain agent; do
    COVD_DIR="$work/cov-$name-$v" COVD_SOCKET="$work/nobody.sock" COVD_AGENT_QUIET=1 \
      valgrind --tool=callgrind --callgrind-out-file="$work/cg-$name-$v" "$work/$name-$v" "$q" "$reps" >/dev/null 2>&1
    local ann ir scan init per
    ann=$(callgrind_annotate --threshold=100 "$work/cg-$name-$v")
    ir=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' <<<"$ann")
    scan=$(awk '/[?]:record_/ { gsub(",", "", $1); s += $1 } END { print s + 0 }' <<<"$ann")
    # The agent's one-time set-up (hashing the PC table, creating the file) is no per-input cost.
    init=$(awk '/[?]:init \[/ { gsub(",", "", $1); s += $1 } END { print s + 0 }' <<<"$ann")
    per=$(( (ir - init) / (n * reps) ))
    if [ "$v" = plain ]; then
      per_plain=$per
      echo "$name: $n queue inputs x $reps; without the agent $per instructions per input"
    else
      echo "$name: with the agent $per per input: +$((per - per_plain)) ($(awk -v a="$per" -v b="$per_plain" 'BEGIN { printf "%.1f", 100 * (a - b) / b }') %), of which the counter scan $((scan / (n * reps))); set-up once $init"
    fi
  done
}

t=examples/tinyimg
"$cc" -O1 "${cov[@]}" "$t/fuzz_tinyimg.c" "$t/decode.c" "$t/meta.c" "$afl/afl-compiler-rt.o" "$afl/libAFLDriver.a" -o "$work/fuzz_tinyimg"
q=$(queue tinyimg "$work/fuzz_tinyimg" "$t/corpus")
for f in fuzz_tinyimg decode meta; do "$cc" -O1 "${cov[@]}" -c "$t/$f.c" -o "$work/t-$f.o"; done
measure tinyimg "$reps_t" "$q" "$work/t-fuzz_tinyimg.o" "$work/t-decode.o" "$work/t-meta.o"

# sqlite: the object scripts/build-sqlite-target.sh --engine=afl compiled (and cached).
bash scripts/build-sqlite-target.sh --engine=afl --no-agent "$work/fuzz_sqlite" >/dev/null 2>&1
obj=""
for o in build/sqlite/sqlite3-*.o; do
  if [ "$(nm "$o" | grep -c ' U __sanitizer_cov_trace_pc_guard$')" != 0 ]; then obj=$o; fi
done
[ -n "$obj" ] || { echo "no AFL++ build of sqlite3.o under build/sqlite" >&2; exit 1; }
strip --strip-debug "$obj" -o "$work/sqlite3.o"
"$cc" -O1 "${cov[@]}" -I build/sqlite/src-* -c examples/sqlite/fuzz_sqlite.c -o "$work/s-fuzz.o"
q=$(queue sqlite "$work/fuzz_sqlite" examples/sqlite/corpus)
measure sqlite "$reps_s" "$q" "$work/s-fuzz.o" "$work/sqlite3.o"
