import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertBuilt, freePorts, ServerProcess } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let root: string;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  assertBuilt();
  root = await mkdtemp(join(tmpdir(), 'conclave-agent-logs-'));
});
afterAll(async () => {
  await Promise.all(servers.filter((s) => s.running).map((s) => s.kill('SIGKILL')));
  await rm(root, { recursive: true, force: true });
});

/** Run `conclave agent --dev` with `flags` (stdout a pipe, not a terminal), stop it with SIGTERM. */
async function agentOutput(name: string, flags: readonly string[]): Promise<string> {
  const [raftPort = 0, httpPort = 0] = await freePorts(2);
  const dataDir = join(root, name);
  const server = new ServerProcess({
    nodeId: 'dev',
    dataDir,
    raftPort,
    httpPort,
    args: [
      'agent',
      '--dev',
      '--groups',
      '1',
      '--data-dir',
      dataDir,
      '--bind',
      `127.0.0.1:${raftPort}`,
      '--http-addr',
      `127.0.0.1:${httpPort}`,
      ...flags,
    ],
  });
  servers.push(server);
  await server.start();
  const exit = await server.kill('SIGTERM');
  expect(exit).toEqual({ code: 0, signal: null });
  return server.output;
}

const logLines = (output: string) =>
  output.split('\n').filter((line) => line !== '' && !/is up: |^Try: /.test(line));

describe('conclave agent --log-format', () => {
  it('writes JSON lines when stdout is not a terminal', async () => {
    const lines = logLines(await agentOutput('json', []));
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(JSON.parse(lines.at(-1) ?? '')).toMatchObject({ level: 30, msg: 'conclave agent stopped' });
  });

  it('writes readable lines with --log-format text, the last one before exit included', async () => {
    const lines = logLines(await agentOutput('text', ['--log-format', 'text']));
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG): /);
    expect(
      lines.some((line) => /INFO: http: Server listening at http:\/\/127\.0\.0\.1:\d+$/.test(line)),
    ).toBe(true);
    // Written synchronously: the line logged just before process.exit() is there.
    expect(lines.at(-1)).toMatch(/INFO: conclave agent stopped \{"nodeId":"dev"\}$/);
  });
});
