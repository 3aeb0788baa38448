#!/usr/bin/env bash
# The main job: the original README's example in Rust, on Convex. Starts the local Convex server
# (convex-test behind Convex's HTTP API), registers `my-task`, enqueues {name: "World"}, prints
# `Hello, World!`, then shuts the executor and the server down. With CONVEX_URL and
# TASK_EXECUTIONS_STORAGE_AUTH_SECRET set, it runs against that deployment instead.
#   ./scripts/quickstart.sh --memory     the same on the in-memory storage
#   ./scripts/quickstart.sh --storage    the storage walk-through (one execution, raw calls)
set -euo pipefail
cd "$(dirname "$0")/.."
install_npm() {
  # Installed once per lockfile: the stamp is a copy of the lockfile npm ci installed from.
  if ! cmp -s convex/package-lock.json convex/node_modules/.installed-from-lockfile 2>/dev/null; then
    (cd convex && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-from-lockfile)
  fi
}
case "${1:-}" in
  --memory) exec cargo run --quiet -p durable-execution --example hello_world ;;
  --storage) install_npm && exec cargo run --quiet --features local-server --example quickstart ;;
  "") install_npm && exec cargo run --quiet -p durable-execution --example hello_world_convex ;;
  *) echo "usage: $0 [--memory | --storage]" >&2; exit 2 ;;
esac
