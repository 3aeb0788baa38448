#!/usr/bin/env bash
# Every test of the project, in the order a failure is cheapest to find:
# formatting and lints, the generated code being up to date, the TypeScript checks and tests
# (convex-test), then the Rust tests (which start the local Convex server themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  printf '\n==> %s\n' "$*"
  STEP_STARTED=$(date +%s)
}
done_step() {
  printf '    (%ss)\n' "$(($(date +%s) - STEP_STARTED))"
}

step "npm ci (convex/, from the committed lockfile)"
# Installed once per lockfile: the stamp is a copy of the lockfile npm ci installed from.
if ! cmp -s convex/package-lock.json convex/node_modules/.installed-from-lockfile 2>/dev/null; then
  (cd convex && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-from-lockfile)
fi
# The app installs the generated component package as a copy (convex/.npmrc): refresh it when
# generated/ changed since (cargo codegen generate).
if ! diff -rq --exclude=node_modules generated \
  convex/node_modules/@durable-execution/storage-convex-component >/dev/null 2>&1; then
  (cd convex && npm run --silent refresh:component)
fi
done_step

step "cargo fmt --check"
cargo fmt --all -- --check
done_step

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
done_step

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
done_step

step "generated code is up to date, both declarations of codegen.json (cargo codegen check)"
cargo codegen check
done_step

step "tsc --strict"
(cd convex && npx tsc --noEmit -p .)
done_step

step "prettier --check"
(cd convex && npm run --silent format:check)
done_step

step "vitest (convex-test; the app and the job queue example)"
(cd convex && npx vitest run)
done_step

step "bundle check (esbuild as Convex's CLI bundles the apps and their components)"
(cd convex && npm run --silent bundle:check)
done_step

step "cargo test --workspace"
cargo test --workspace
done_step

step "the tests' real-deployment mode (CONVEX_URL), against a stand-in local server"
bash scripts/remote-mode-check.sh
done_step
