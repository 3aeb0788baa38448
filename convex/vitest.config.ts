import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const convexDist = fileURLToPath(new URL('./node_modules/convex/dist/esm/', import.meta.url))

export default defineConfig({
  resolve: {
    // ../generated has no node_modules of its own: resolve `convex/*` from
    // here, so the component and the app share one copy of convex.
    alias: [
      {
        find: /^convex\/(server|values|browser)$/,
        replacement: `${convexDist}$1/index.js`,
      },
    ],
  },
  test: {
    // convex-test's documented environment (Convex's V8-like runtime).
    environment: 'edge-runtime',
    include: ['tests/**/*.test.ts'],
    server: { deps: { inline: ['convex-test'] } },
    testTimeout: 30_000,
    // A cold start of the local server (tsx compiling it) can take longer than the default 10 s.
    hookTimeout: 60_000,
  },
})
