import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against the sources, so a test run never depends on a stale build.
    alias: {
      '@conclave/raft': fileURLToPath(new URL('./packages/raft/src/index.ts', import.meta.url)),
      '@conclave/sim': fileURLToPath(new URL('./packages/sim/src/index.ts', import.meta.url)),
      '@conclave/server/storage': fileURLToPath(
        new URL('./packages/server/src/storage/index.ts', import.meta.url),
      ),
      '@conclave/server/transport': fileURLToPath(
        new URL('./packages/server/src/transport/index.ts', import.meta.url),
      ),
      '@conclave/server': fileURLToPath(new URL('./packages/server/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
