#!/usr/bin/env bash
# Prints kmigrate's performance figures (medians over RUNS runs; figures, not
# pass/fail). Generates synthetic monorepos with benches/gen.rs, then times:
#   check over N Kaniko files; check over a mostly-clean repo next to `cat`;
#   rewrite --check over N files; one-file check latency; the parse throughput
#   of the fast YAML reader and of tree-sitter; peak RSS; and, when
#   zizmor is installed (pip install zizmor), zizmor --offline over a GitHub
#   workflow corpus of the same total bytes, with the bytes/s ratio.
# Then one row per large-file shape that once took quadratic time (many
# top-level jobs, many aliases, Cloud Build `args: *a`, flow-style steps,
# `include: 'ci/*.yml'`): check at SHAPE_SIZES (10k and 100k; included files
# at a tenth of that) and the ratio of the two times (linear: about 10).
# Usage: scripts/bench.sh            (N=10000 RUNS=5 BENCH_DIR=/tmp/kmigrate-bench)
#        SHAPES_ONLY=1 scripts/bench.sh   (only the shape rows; SHAPE_RUNS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
RUNS=${RUNS:-5}
DIR=${BENCH_DIR:-/tmp/kmigrate-bench}

cargo build --release --quiet
K=${CARGO_TARGET_DIR:-$PWD/target}/release/kmigrate
ROOT=$PWD
gen() { cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" --bench gen -- "$@"; }

rm -rf "$DIR"
mkdir -p "$DIR"

# median SECONDS of RUNS runs of "$@" (output discarded, exit code ignored).
median() {
  local runs=$1; shift
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    times+=("$(calc "$t1 - $t0")")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.4f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
mbps() { awk "BEGIN { printf \"%.2f\", $1 / $2 / 1000000 }"; }

# One row per shape: `check` of the shape at the two sizes and their ratio.
shapes() {
  read -r SMALL LARGE <<<"${SHAPE_SIZES:-10000 100000}"
  local runs=${SHAPE_RUNS:-3}
  echo "large valid files, check, medians of $runs runs (linear: ratio about 10)"
  for shape in keys aliases cb-alias-args cb-flow cb-flow-json includes; do
    local small=$SMALL large=$LARGE what=entries variant="shape-$shape" format=human
    case $shape in
      keys) what="top-level jobs" ;;
      aliases) what="jobs with an alias" ;;
      cb-alias-args) what="steps with args: *a" ;;
      cb-flow) what="flow-style steps, each a fix" ;;
      # JSON carries every fix's preview diff (once quadratic: each diffed
      # the whole file).
      cb-flow-json) what="flow-style steps, JSON report with a preview per fix"; variant=shape-cb-flow; format=json ;;
      includes) what="files included by include: 'ci/*.yml'"; small=$((SMALL / 10)); large=$((LARGE / 10)) ;;
    esac
    local t=()
    for n in "$small" "$large"; do
      local d="$DIR/shape-$shape-$n"
      gen "$d" "$n" "$variant" >/dev/null
      check_shape() { "$K" check --no-config -q --exit-zero --format "$format" "$d" >/dev/null; }
      t+=("$(median "$runs" check_shape)")
    done
    echo "shape $shape ($what): $small: ${t[0]} s; $large: ${t[1]} s; ratio $(calc "${t[1]} / ${t[0]}")"
  done
}
if [ -n "${SHAPES_ONLY:-}" ]; then
  echo "machine: $(nproc) cores; kmigrate $("$K" --version 2>/dev/null | head -1)"
  shapes
  exit 0
fi

echo "generating in $DIR"
gen "$DIR/kaniko" "$N" kaniko
gen "$DIR/clean" "$N" clean
cd "$DIR"
KANIKO_BYTES=$(find kaniko -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
CLEAN_BYTES=$(find clean -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
mapfile -t KANIKO_FILES < <(find kaniko -type f | sort)
ONE=${KANIKO_FILES[0]}


check_kaniko() { "$K" check --no-config -q --exit-zero kaniko; }
check_clean() { "$K" check --no-config -q --exit-zero clean; }
cat_clean() { find clean -type f \( -name '*.yaml' -o -name '*.yml' \) -exec cat {} + ; }
rewrite_check() { "$K" rewrite --check "${KANIKO_FILES[@]}"; }
# One-file latency is timed over a loop of 50 runs, so the two `date` calls
# around a measurement (a process start each) are not counted in it.
LOOP=50
one_file() { for _ in $(seq "$LOOP"); do "$K" check --no-config -q --exit-zero "$ONE" >/dev/null 2>&1 || true; done; }
spawn() { for _ in $(seq "$LOOP"); do /bin/true; done; }

echo "machine: $(nproc) cores; kmigrate $("$K" --version 2>/dev/null | head -1); medians of $RUNS runs"
T=$(median "$RUNS" check_kaniko)
echo "check, $N Kaniko files ($KANIKO_BYTES bytes): ${T} s  ($(mbps "$KANIKO_BYTES" "$T") MB/s)"
TC=$(median "$RUNS" check_clean)
TCAT=$(median "$RUNS" cat_clean)
echo "check, mostly-clean repo ($N files, $CLEAN_BYTES bytes, 95% without Kaniko): ${TC} s; cat of the same files: ${TCAT} s; ratio $(calc "$TC / $TCAT")x"
TR=$(median "$RUNS" rewrite_check)
echo "rewrite --check, $N files: ${TR} s"
T1=$(median "$RUNS" one_file)
TS=$(median "$RUNS" spawn)
echo "check, one file: $(calc "$T1 * 1000 / $LOOP") ms (starting /bin/true: $(calc "$TS * 1000 / $LOOP") ms)"
cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" --bench parse -- "$DIR/kaniko"
/usr/bin/time -f '%M' -o rss.kaniko "$K" check --no-config -q --exit-zero kaniko >/dev/null 2>&1 || true
/usr/bin/time -f '%M' -o rss.clean "$K" check --no-config -q --exit-zero clean >/dev/null 2>&1 || true
RSS=$(tail -1 rss.kaniko)
RSS_CLEAN=$(tail -1 rss.clean)
echo "peak RSS, check of $N Kaniko files: $((RSS / 1024)) MB; of the mostly-clean repo: $((RSS_CLEAN / 1024)) MB"

if command -v zizmor >/dev/null 2>&1; then
  gen "$DIR/workflows" "$KANIKO_BYTES" workflows
  WF_BYTES=$(find workflows -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  zizmor_run() { zizmor --offline --no-progress workflows; }
  ZRUNS=$(( RUNS > 3 ? 3 : RUNS ))
  TZ=$(median "$ZRUNS" zizmor_run)
  KB=$(calc "$KANIKO_BYTES / $T")
  ZB=$(calc "$WF_BYTES / $TZ")
  echo "zizmor $(zizmor --version | awk '{print $2}') --offline, $WF_BYTES bytes of workflows: ${TZ} s  ($(mbps "$WF_BYTES" "$TZ") MB/s)"
  echo "check bytes/s vs zizmor: $(calc "$KB / $ZB")x"
else
  echo "zizmor not installed (pip install zizmor): comparison skipped"
fi

shapes
