import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pollUntil } from '@conclave/testkit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../agent/agent.js';
import { resolveAgentConfig } from '../agent/config.js';

const groups = 2;
let agent: Agent | null = null;
let dataDir: string | null = null;

afterEach(async () => {
  await agent?.stop({ transferLeadership: false });
  agent = null;
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  dataDir = null;
});

describe('a real dev agent', () => {
  it('serves WAL, proposal and HTTP metrics, and logs each group becoming led once', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'conclave-metrics-'));
    const lines: { event?: string; group?: number }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text));
        done();
      },
    });
    const config = resolveAgentConfig([
      { dev: true, dataDir, groups, tickMs: 10, bind: '127.0.0.1:0', httpAddr: '127.0.0.1:0' },
    ]);
    agent = await startAgent({ config, peers: [], logger: pino({ level: 'info' }, stream) });
    const running = agent;
    const base = `http://${running.httpAddress.host}:${running.httpAddress.port}`;
    const allLed = () =>
      [...Array(groups).keys()].every((g) => running.host.group(g).raw.status().leaderId !== null);
    await pollUntil(async () => (allLed() ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'every group to elect this server',
    });
    await pollUntil(
      async () => ((await fetch(`${base}/v1/kv/a`, { method: 'PUT', body: 'v' })).ok ? true : undefined),
      { timeoutMs: 10_000, intervalMs: 20, what: 'a first write' },
    );
    const text = await (await fetch(`${base}/v1/agent/metrics?format=prometheus`)).text();
    const value = (series: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${series} `))
          ?.split(' ')[1],
      );
    expect(value('conclave_wal_bytes')).toBeGreaterThan(0);
    expect(value('conclave_wal_segments')).toBeGreaterThanOrEqual(1);
    expect(value('conclave_wal_write_seconds_count{sync="true"}')).toBeGreaterThan(0);
    expect(text).toContain(
      'conclave_http_request_duration_seconds_count{route="/v1/kv/*",method="PUT",code="200"}',
    );
    for (let g = 0; g < groups; g++) {
      expect(lines.filter((l) => l.event === 'leader_changed' && l.group === g)).toHaveLength(1);
    }
  });
});
