#!/usr/bin/env bash
# The Rust tests' real-deployment mode (CONVEX_URL + TASK_EXECUTIONS_STORAGE_AUTH_SECRET), run
# against a standalone local server that stands in for the deployment: one database shared by
# every test, emptied with deleteAll, reached through the URL and secret from the environment.
# It checks the mode's own machinery (the shared-database lock, deleteAll between tests, clock
# probes, time comparisons that cannot assume this machine's clock), which a run on the
# per-test local instances never exercises. It does not stand for a real Convex backend: see
# the README ("The local Convex server").
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=
cleanup() {
  exec 3>&- || true
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The server exits when its stdin closes (--exit-with-stdin): this script holds it open on fd 3.
mkfifo "$work/stdin"
secret="remote-mode-check-$RANDOM$RANDOM"
(
  cd convex
  TASK_EXECUTIONS_STORAGE_AUTH_SECRET="$secret" TASK_EXECUTIONS_STORAGE_TEST_MODE=true \
    exec ./node_modules/.bin/tsx --tsconfig tsconfig.tsx.json server/main.ts \
    --port 0 --exit-with-stdin <"$work/stdin" >"$work/log" 2>&1
) &
server_pid=$!
exec 3>"$work/stdin"

url=
for _ in $(seq 1 600); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/log" | head -n 1 || true)
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the local server did not start:" >&2
    cat "$work/log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { echo "the local server did not start within 60 s" >&2; cat "$work/log" >&2; exit 1; }
echo "stand-in deployment at $url"

export CONVEX_URL="$url" TASK_EXECUTIONS_STORAGE_AUTH_SECRET="$secret"
unset CONVEX_ADMIN_KEY
cargo test -p durable-execution-storage-convex \
  --test conformance_convex --test differential --test clock_skew --test concurrency --test e2e_client
cargo test -p durable-execution --test suite_convex --test crash_recovery
