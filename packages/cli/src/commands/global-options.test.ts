import { type DevAgent, startDevAgent } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { runBuiltCli } from './testing/built-cli.js';
import { run } from './testing/capture.js';

/** An address nothing listens on: any request to it fails to connect (exit 3). */
const nowhere = '127.0.0.1:1';

let dev: DevAgent;

beforeAll(async () => {
  dev = await startDevAgent({ groups: 2 });
  await dev.client.kvPut({ key: 'g/a', value: 'alpha' });
});
afterAll(async () => {
  await dev.stop();
});

describe('conclave --http-addr and --json, before or after the command', () => {
  it("takes --http-addr before the command as after it; the command's own wins", async () => {
    // CONCLAVE_HTTP_ADDR names no server: only the flag can reach it.
    const before = await run(['--http-addr', dev.httpAddr, 'kv', 'get', 'g/a'], { httpAddr: nowhere });
    expect(before).toMatchObject({ code: exitCodes.ok, stdout: 'alpha\n' });
    const after = await run(['kv', 'get', 'g/a', '--http-addr', dev.httpAddr], { httpAddr: nowhere });
    expect(after).toMatchObject({ code: exitCodes.ok, stdout: 'alpha\n' });
    const both = await run(['--http-addr', nowhere, 'kv', 'get', 'g/a', '--http-addr', dev.httpAddr], {
      httpAddr: nowhere,
    });
    expect(both).toMatchObject({ code: exitCodes.ok, stdout: 'alpha\n' });
    const nested = await run(
      ['--http-addr', dev.httpAddr, 'operator', 'raft', 'list-peers', '--group', '0'],
      {
        httpAddr: nowhere,
      },
    );
    expect(nested.code).toBe(exitCodes.ok);
  });

  it('takes --json before the command as after it', async () => {
    const before = await run(['--json', 'kv', 'get', 'g/a'], { httpAddr: dev.httpAddr });
    const after = await run(['kv', 'get', 'g/a', '--json'], { httpAddr: dev.httpAddr });
    expect(before.code).toBe(exitCodes.ok);
    expect(JSON.parse(before.stdout)).toMatchObject({ key: 'g/a' });
    expect(before.stdout).toBe(after.stdout);
  });

  it('refuses a global option before a command that does not take it (exit 2)', async () => {
    const lock = await run(['--json', 'lock', 'g/l', 'true'], { httpAddr: dev.httpAddr });
    expect(lock.code).toBe(exitCodes.usage);
    expect(lock.stderr).toMatch(/--json does not apply to 'conclave lock'/);
    const exported = await run(['--json', 'kv', 'export', 'g/'], { httpAddr: dev.httpAddr });
    expect(exported.code).toBe(exitCodes.usage);
  });

  it('reads the address from CONCLAVE_HTTP_ADDR, else CONSUL_HTTP_ADDR, before the default', async () => {
    const consul = await run(['kv', 'get', 'g/a'], {
      httpAddr: null,
      env: { CONSUL_HTTP_ADDR: dev.httpAddr },
    });
    expect(consul).toMatchObject({ code: exitCodes.ok, stdout: 'alpha\n' });
    // Consul's form with a scheme works too.
    const scheme = await run(['kv', 'get', 'g/a'], {
      httpAddr: null,
      env: { CONSUL_HTTP_ADDR: `http://${dev.httpAddr}` },
    });
    expect(scheme.code).toBe(exitCodes.ok);
    const ours = await run(['kv', 'get', 'g/a'], {
      httpAddr: nowhere,
      env: { CONSUL_HTTP_ADDR: dev.httpAddr },
    });
    expect(ours.code).toBe(exitCodes.error);
    expect(ours.stderr).toContain(`ECONNREFUSED ${nowhere}`);
  });

  it('does the same as a process: `conclave --http-addr ADDR kv get`', async () => {
    const result = await runBuiltCli(['--http-addr', dev.httpAddr, '--json', 'kv', 'get', 'g/a']);
    expect(result.code).toBe(exitCodes.ok);
    expect(JSON.parse(result.stdout)).toMatchObject({ key: 'g/a' });
    const agent = await runBuiltCli(['--http-addr', dev.httpAddr, 'agent', '--dev']);
    // The agent's --http-addr is where it listens: given before `agent`, it is refused.
    expect(agent.code).toBe(exitCodes.usage);
    expect(agent.stderr).toMatch(/--http-addr does not apply to 'conclave agent'/);
  });
});
