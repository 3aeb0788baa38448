#!/usr/bin/env bash
# The main job: starts the local Convex server (convex-test behind Convex's HTTP API) and walks
# one execution through the Convex-backed storage, printing each state. With CONVEX_URL (and
# TASK_EXECUTIONS_STORAGE_AUTH_SECRET) set, it runs against that deployment instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# Installed once per lockfile: the stamp is a copy of the lockfile npm ci installed from.
if ! cmp -s convex/package-lock.json convex/node_modules/.installed-from-lockfile 2>/dev/null; then
  (cd convex && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-from-lockfile)
fi
exec cargo run --quiet --features local-server --example quickstart
