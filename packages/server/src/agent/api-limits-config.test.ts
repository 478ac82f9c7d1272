import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultApiLimits } from '../service/types.js';
import {
  agentDefaults,
  agentOptions,
  apiLimitsOf,
  configFromEnv,
  configFromFile,
  resolveAgentConfig,
} from './config.js';
import { formatOptionValue } from './options.js';
import { singleServerPerTest } from './testing/single-server.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-api-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the API limits as agent settings', () => {
  it('default to the API defaults: 512KiB values, 2048-byte keys, 128 ops, 10m waits', () => {
    const config = resolveAgentConfig([{ dev: true }]);
    expect(apiLimitsOf(config)).toEqual(defaultApiLimits);
  });

  it('come from a file, the environment and flags, with units', () => {
    const file = join(dir, 'limits.yaml');
    writeFileSync(file, 'kvValueBytesMax: 256KiB\ntxnOpsMax: 16\n');
    const env = configFromEnv({ CONCLAVE_TXN_OPS_MAX: '64', CONCLAVE_BLOCKING_WAIT_MAX: '2m' });
    const config = resolveAgentConfig([{ dev: true }, configFromFile(file), env, { kvKeyBytesMax: '1KiB' }]);
    expect(apiLimitsOf(config)).toEqual({
      kvValueBytesMax: 256 * 1024,
      kvKeyBytesMax: 1024,
      txnOpsMax: 64,
      // The default wait (5m) is cut to the longest one allowed.
      blockingWaitDefaultMs: 120_000,
      blockingWaitMaxMs: 120_000,
    });
    expect(apiLimitsOf(resolveAgentConfig([{ dev: true, blockingWaitMaxMs: '1h' }]))).toMatchObject({
      blockingWaitDefaultMs: 5 * 60_000,
      blockingWaitMaxMs: 60 * 60_000,
    });
  });

  it.each([
    [{ kvValueBytesMax: 0 }, /kvValueBytesMax must be a size in bytes .* in \[1, .*setting: kvValueBytesMax/],
    [{ kvValueBytesMax: '1MiB' }, /setting: kvValueBytesMax/],
    // In range alone, but a key's row would not fit a snapshot part.
    [{ kvValueBytesMax: '700KiB' }, /kvValueBytesMax plus 3 x kvKeyBytesMax .* snapshot part/],
    [
      { kvKeyBytesMax: '8KiB' },
      /kvKeyBytesMax must be a size in bytes .* in \[1, 4096\].*setting: kvKeyBytesMax/,
    ],
    [{ txnOpsMax: 0 }, /txnOpsMax must be an integer in \[1, 4096\].*setting: txnOpsMax/],
    // 1024 ops of 2 KiB keys would not fit one Raft proposal.
    [{ txnOpsMax: 1024 }, /largest transaction.* must fit one Raft proposal.*lower txnOpsMax/],
    [{ blockingWaitMaxMs: '500ms' }, /blockingWaitMaxMs must be a duration .* from 1000 to 3600000 ms/],
    [{ blockingWaitMaxMs: '2h' }, /setting: blockingWaitMaxMs/],
  ])('refuses %j, naming the setting', (input, message) => {
    expect(() => resolveAgentConfig([{ dev: true }, input])).toThrow(message);
  });

  it('takes more operations per transaction once keys are short enough for them to fit a proposal', () => {
    const config = resolveAgentConfig([{ dev: true, txnOpsMax: 1024, kvKeyBytesMax: 256 }]);
    expect(config.txnOpsMax).toBe(1024);
  });

  it('accepts every default as the option table writes it (the docs show these)', () => {
    const input = Object.fromEntries(
      agentOptions
        .filter((option) => option.default !== null && option.kind !== 'switch')
        .map((option) => [option.key, formatOptionValue(option, option.default ?? '')]),
    );
    const config = resolveAgentConfig([{ dev: true }, input]);
    expect(config.snapshotIntervalMs).toBe(agentDefaults.snapshotIntervalMs);
    expect(config).toEqual(resolveAgentConfig([{ dev: true }]));
  });
});

describe('the agent applies its API limits', () => {
  const setup = singleServerPerTest({
    groupCount: 2,
    config: { kvValueBytesMax: '600KiB', txnOpsMax: '200', kvKeyBytesMax: '2000' },
  });

  it('stores values and transactions past the defaults, and refuses past the settings', async () => {
    const { app } = await setup();
    const value = Buffer.alloc(550 * 1024, 1);
    const put = await app.inject({ method: 'PUT', url: '/v1/kv/big', payload: value });
    expect([put.statusCode, put.json()]).toEqual([200, true]);
    const over = await app.inject({
      method: 'PUT',
      url: '/v1/kv/big',
      payload: Buffer.alloc(600 * 1024 + 1),
    });
    expect(over.statusCode).toBe(413);
    expect(over.json()).toMatchObject({
      code: 'VALUE_TOO_LARGE',
      message: /kvValueBytesMax \(614400 bytes\)/,
    });

    const ops = (n: number) =>
      [...Array(n).keys()].map((i) => ({ KV: { Verb: 'set', Key: `{t}/${i}`, Value: 'dg==' } }));
    const txn = await app.inject({ method: 'PUT', url: '/v1/txn', payload: ops(200) });
    expect(txn.statusCode).toBe(200);
    const tooMany = await app.inject({ method: 'PUT', url: '/v1/txn', payload: ops(201) });
    expect([tooMany.statusCode, tooMany.json<{ code: string }>().code]).toEqual([413, 'TXN_TOO_LARGE']);
  });
});

describe('the agent applies its key limit', () => {
  const setup = singleServerPerTest({ groupCount: 2, config: { kvKeyBytesMax: '4KiB', txnOpsMax: '64' } });

  it('stores keys past the default length, and refuses past the setting', async () => {
    const { app } = await setup();
    const longKey = 'k'.repeat(4096);
    expect((await app.inject({ method: 'PUT', url: `/v1/kv/${longKey}`, payload: 'v' })).statusCode).toBe(
      200,
    );
    const tooLong = await app.inject({ method: 'PUT', url: `/v1/kv/${longKey}x`, payload: 'v' });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json()).toMatchObject({
      code: 'BAD_REQUEST',
      message: /4097 bytes, more than the limit of 4096/,
    });
  });
});
