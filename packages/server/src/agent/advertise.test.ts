import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, waitFor } from '@conclave/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startAgent } from './agent.js';
import { resolveAgentConfig } from './config.js';

describe('--advertise', () => {
  it('is the host others are told and shown, with the bound ports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-advertise-'));
    const [raft, http] = await freePorts(2);
    const config = resolveAgentConfig([
      {
        dev: true,
        dataDir: dir,
        bind: `127.0.0.1:${raft}`,
        httpAddr: `127.0.0.1:${http}`,
        advertise: 'localhost',
      },
    ]);
    const agent = await startAgent({ config, logger: pino({ level: 'silent' }) });
    try {
      expect(agent.raftAddress).toEqual({ host: 'localhost', port: raft });
      expect(agent.addressBook.raftAddress('dev')).toEqual({ host: 'localhost', port: raft });
      expect(agent.addressBook.httpAddress('dev')).toEqual({ host: 'localhost', port: http });
      const leader = await waitFor(
        async () => {
          const named: unknown = await fetch(`http://127.0.0.1:${http}/v1/status/leader`).then((r) =>
            r.json(),
          );
          return named === '' ? undefined : named;
        },
        { timeoutMs: 10_000, intervalMs: 20, what: 'the dev server to elect itself' },
      );
      expect(leader).toBe(`localhost:${raft}`);
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
