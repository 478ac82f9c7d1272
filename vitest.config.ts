import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against the sources, so a test run never depends on a stale build. Subpaths
    // come first: an alias matches by prefix.
    alias: {
      '@conclave/server/archive': fileURLToPath(
        new URL('./packages/server/src/archive/index.ts', import.meta.url),
      ),
      '@conclave/server/agent-options': fileURLToPath(
        new URL('./packages/server/src/agent/options.ts', import.meta.url),
      ),
      '@conclave/server/fsm': fileURLToPath(new URL('./packages/server/src/fsm/index.ts', import.meta.url)),
      '@conclave/raft': fileURLToPath(new URL('./packages/raft/src/index.ts', import.meta.url)),
      '@conclave/protocol': fileURLToPath(new URL('./packages/protocol/src/index.ts', import.meta.url)),
      '@conclave/storage': fileURLToPath(new URL('./packages/storage/src/index.ts', import.meta.url)),
      '@conclave/server': fileURLToPath(new URL('./packages/server/src/index.ts', import.meta.url)),
      '@conclave/client': fileURLToPath(new URL('./packages/client/src/index.ts', import.meta.url)),
      '@conclave/testkit': fileURLToPath(new URL('./packages/testkit/src/index.ts', import.meta.url)),
      '@conclave/sim': fileURLToPath(new URL('./packages/sim/src/index.ts', import.meta.url)),
    },
  },
  test: {
    // The examples' tests sit beside their sources (examples/<name>/*.test.ts), outside their builds.
    include: ['packages/*/src/**/*.test.ts', 'examples/*/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
