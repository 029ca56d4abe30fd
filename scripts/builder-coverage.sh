#!/usr/bin/env bash
# Figures, not a test: builds every Dockerfile of a directory with the
# embedded builder and prints the outcome of each (built / refused feature /
# RUN failed / other error) and a summary line. Every `FROM BASE` is mapped
# to a busybox image the script builds and pushes to a loopback registry, and
# every `WEB` to a loopback HTTP server of the directory (for `ADD <URL>`).
#
# Needs root (RUN uses namespaces), docker-registry and busybox-static
# (see scripts/test.sh).
# Usage: scripts/builder-coverage.sh [DIR]   (default tests/fixtures/builder_coverage)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-tests/fixtures/builder_coverage}
command -v docker-registry >/dev/null || { echo "missing docker-registry" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "missing /bin/busybox (busybox-static)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (RUN needs namespaces)" >&2; exit 1; }

cargo build --release --locked -q
K=${CARGO_TARGET_DIR:-$PWD/target}/release/kmigrate
W=$(mktemp -d /tmp/kmigrate-coverage.XXXXXX)
reg_pid=
web_pid=
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
  [ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null && wait "$web_pid" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$W/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: $REG
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

WEB_PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
WEB=http://127.0.0.1:$WEB_PORT
python3 -m http.server --bind 127.0.0.1 --directory "$DIR" "$WEB_PORT" >"$W/web.log" 2>&1 &
web_pid=$!
for _ in $(seq 100); do curl -fs "$WEB/" >/dev/null 2>&1 && break; sleep 0.1; done

mkdir -p "$W/base"
cp /bin/busybox "$W/base/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/base/passwd"
cat > "$W/base/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
COPY passwd /etc/passwd
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DF
"$K" build --progress=quiet --state-dir "$W/state-base" -t "$REG/coverage/busybox:1" --push "$W/base" >/dev/null

declare -A count=()
total=0
for df in "$DIR"/*.Dockerfile; do
  name=$(basename "$df" .Dockerfile)
  ctx="$W/ctx-$name"
  cp -r "$DIR" "$ctx"
  sed "s|\bBASE\b|$REG/coverage/busybox:1|g; s|\bWEB\b|$WEB|g" "$df" > "$ctx/$name.Dockerfile"
  if "$K" build --progress=plain --state-dir "$W/state-$name" -f "$ctx/$name.Dockerfile" \
      --output type=local,dest="$W/out-$name" "$ctx" >"$W/$name.log" 2>&1; then
    outcome="built"
  elif grep -qiE "not supported|unsupported|refused|is not implemented|nothing was run" "$W/$name.log"; then
    outcome="refused feature"
  elif grep -qE "^(error|  ×|Error).*RUN|exited with|exit (status|code)" "$W/$name.log"; then
    outcome="RUN failed"
  else
    outcome="other error"
  fi
  count[$outcome]=$(( ${count[$outcome]:-0} + 1 ))
  total=$((total + 1))
  why=
  # The first line that says why, with the temporary directory left out.
  [ "$outcome" = built ] || why=$(grep -m1 -iE "error|refused|supported|failed|×" "$W/$name.log" \
    | sed "s|$W/ctx-$name/||g" | cut -c1-100 || true)
  printf '%-26s %-16s %s\n' "$name" "$outcome" "$why"
done
summary="$total Dockerfiles:"
for o in "built" "refused feature" "RUN failed" "other error"; do
  summary+=" ${count[$o]:-0} $o,"
done
echo "${summary%,}"
