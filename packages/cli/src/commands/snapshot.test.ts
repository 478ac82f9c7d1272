import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readArchiveStream } from '@conclave/server/archive';
import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { snapshotArchiveBytesMax } from './snapshot.js';
import { run } from './testing/capture.js';

let dev: DevAgent;
let dir: string;
const conclave = (argv: readonly string[], httpAddr = dev.httpAddr) => run(argv, { httpAddr, cwd: dir });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conclave-snapshot-'));
  dev = await startDevAgent({ groups: 2 });
  await waitFor(async () => (await dev.client.agentSelf()).groups.every((g) => g.leaderId === 'dev'), {
    timeoutMs: 10_000,
    intervalMs: 10,
    what: 'every group to elect the server',
  });
  for (let i = 0; i < 10; i++) await dev.client.kvPut({ key: `app/${i}`, value: `v${i}` });
  for (let i = 0; i < 3; i++) await dev.client.kvPut({ key: `web/${i}`, value: 'x'.repeat(100) });
  await dev.client.kvPut({ key: 'top', value: 'level' });
});
afterAll(async () => {
  await dev.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('conclave snapshot', () => {
  it('save writes a verified archive of every group and leaves no temp file', async () => {
    const result = await conclave(['snapshot', 'save', 'one.snap']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(exitCodes.ok);
    expect(result.stdout).toMatch(
      /^Saved and verified snapshot to one\.snap: 2 groups \(0@\d+ 1@\d+\), 14 keys/u,
    );
    const meta = await readArchiveStream(createReadStream(join(dir, 'one.snap')), {
      archiveBytesMax: snapshotArchiveBytesMax,
    });
    expect(meta.groups.map((g) => g.voters)).toEqual([['dev'], ['dev']]);
    expect(await readdir(dir)).toEqual(['one.snap']);
  });

  it('save --stale answers from the server asked, with the index it saved at', async () => {
    const result = await conclave(['snapshot', 'save', 'stale.snap', '--stale', '--json']);
    expect(result.code).toBe(exitCodes.ok);
    const saved = JSON.parse(result.stdout) as { index: number; groups: { index: number }[] };
    // X-Consul-Index: the sum of the groups' applied indexes when the save began.
    expect(saved.index).toBe(saved.groups.reduce((sum, g) => sum + g.index, 0));
    await rm(join(dir, 'stale.snap'));
  });

  it('inspect shows each group and, with --kvdetails, keys by prefix', async () => {
    const text = await conclave(['snapshot', 'inspect', 'one.snap', '--kvdetails']);
    expect(text.code).toBe(exitCodes.ok);
    const lines = text.stdout.split('\n');
    expect(lines.find((l) => l.startsWith('Groups'))).toBe('Groups    2');
    expect(
      lines
        .find((l) => l.startsWith('total'))
        ?.trim()
        .split(/ +/u)
        .at(-1),
    ).toBe('14');
    const prefixes = lines.filter((l) => /^(app\/|web\/|top) /u.test(l)).map((l) => l.split(/ +/u));
    expect(prefixes).toEqual([
      ['app/', '10', String(10 * 'app/0'.length + 10 * 2)],
      ['top', '1', String('top'.length + 'level'.length)],
      ['web/', '3', String(3 * ('web/0'.length + 100))],
    ]);
    const json = await conclave(['snapshot', 'inspect', 'one.snap', '--json']);
    const parsed = JSON.parse(json.stdout) as { groups: { keys: number }[]; total: { keys: number } };
    expect(parsed.total.keys).toBe(14);
    expect(parsed.groups).toHaveLength(2);
  });

  it('restore puts every group back as it was saved', async () => {
    await dev.client.kvDelete({ key: 'app/', recurse: true });
    await dev.client.kvPut({ key: 'late', value: 'after the save' });
    const result = await conclave(['snapshot', 'restore', 'one.snap']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(exitCodes.ok);
    expect(result.stdout).toMatch(/group 0: restored \d+ keys at index \d+\ngroup 1: restored \d+ keys/u);
    const keys = (await dev.client.kvKeys('')).value;
    expect([...keys].sort()).toEqual(
      [...[...Array(10).keys()].map((i) => `app/${i}`), 'top', 'web/0', 'web/1', 'web/2'].sort(),
    );
    expect((await dev.client.kvGet('app/7')).value?.value).toEqual(new Uint8Array(Buffer.from('v7')));
  });

  it('refuses a corrupt archive, on inspect and restore, as bad input (exit 2), and changes nothing', async () => {
    const good = await readFile(join(dir, 'one.snap'));
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)] = (bad[Math.floor(bad.length / 2)] ?? 0) ^ 0xff;
    await writeFile(join(dir, 'bad.snap'), bad);
    await dev.client.kvPut({ key: 'marker', value: 'stays' });
    for (const command of ['inspect', 'restore']) {
      const result = await conclave(['snapshot', command, 'bad.snap']);
      expect(result.code).toBe(exitCodes.usage);
      expect(result.stderr).toMatch(/SNAPSHOT_ARCHIVE_INVALID/u);
    }
    expect((await dev.client.kvGet('marker')).value?.value).toEqual(new Uint8Array(Buffer.from('stays')));
    // The CLI verifies before it connects: against no server at all, the archive is what is refused.
    const offline = await conclave(['snapshot', 'restore', 'bad.snap'], '127.0.0.1:1');
    expect(offline.stderr).toMatch(/SNAPSHOT_ARCHIVE_INVALID/u);
    expect(offline.code).toBe(exitCodes.usage);
  });

  it('a save that fails leaves neither the file nor a temp file', async () => {
    const result = await conclave(['snapshot', 'save', 'never.snap'], '127.0.0.1:1');
    expect(result.code).toBe(exitCodes.error);
    expect(result.stderr).toMatch(/CONNECTION_FAILED/u);
    expect((await readdir(dir)).sort()).toEqual(['bad.snap', 'one.snap']);
  });
});
