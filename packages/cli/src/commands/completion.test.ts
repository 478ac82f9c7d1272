import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { runBuiltCli } from './testing/built-cli.js';

let dir: string;
let bashScript: string;
let zshScript: string;
/** The top-level commands as `conclave --help` lists them. */
let topLevel: string[];

const hasZsh = spawnSync('zsh', ['-c', 'true']).status === 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conclave-completion-'));
  const [bash, zsh, help] = await Promise.all([
    runBuiltCli(['completion', 'bash']),
    runBuiltCli(['completion', 'zsh']),
    runBuiltCli(['--help']),
  ]);
  for (const result of [bash, zsh, help]) expect(result.code, result.stderr).toBe(exitCodes.ok);
  bashScript = bash.stdout;
  zshScript = zsh.stdout;
  const commandsSection = help.stdout.split('\nCommands:\n')[1] ?? '';
  topLevel = [...commandsSection.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1] ?? '');
  await writeFile(join(dir, 'conclave.bash'), bashScript);
  await writeFile(join(dir, 'conclave.zsh'), zshScript);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What bash completes for the words typed (the last one being completed). */
function bashComplete(words: readonly string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      `source '${join(dir, 'conclave.bash')}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _conclave; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter((line) => line !== '');
}

describe('conclave completion', () => {
  it('names every top-level command, in both shells', () => {
    expect(topLevel).toEqual(
      expect.arrayContaining(['agent', 'kv', 'members', 'operator', 'lock', 'snapshot', 'counter', 'value']),
    );
    expect(topLevel).toEqual(expect.arrayContaining(['map', 'set', 'election', 'semaphore', 'completion']));
    expect(bashComplete(['conclave', '']).sort()).toEqual([...topLevel].sort());
    for (const name of topLevel) expect(zshScript).toContain(`'${name}:`);
  });

  it('writes a bash script that bash -n accepts, completing subcommands, options and their values', () => {
    const check = spawnSync('bash', ['-n', join(dir, 'conclave.bash')], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    expect(bashComplete(['conclave', 'kv', 'g'])).toEqual(['get']);
    expect(bashComplete(['conclave', '--http-addr', '127.0.0.1:8501', 'operator', 'raft', 'l'])).toEqual([
      'list-peers',
    ]);
    expect(bashComplete(['conclave', 'kv', 'get', 'app/x', '--j'])).toEqual(['--json']);
    // The primitives' groups, and the lock primitive's subcommands beside Consul's lock.
    expect(bashComplete(['conclave', 'counter', 'i'])).toEqual(['incr']);
    expect(bashComplete(['conclave', 'lock', '']).sort()).toEqual(['acquire', 'holder', 'release']);
    expect(bashComplete(['conclave', 'lock', 'acquire', 'jobs', '--t'])).toEqual(['--timeout']);
    expect(bashComplete(['conclave', 'agent', '--log-format', ''])).toEqual(['text', 'json']);
    // A key or a file: nothing from the tree (bash then completes file names).
    expect(bashComplete(['conclave', 'kv', 'get', ''])).toEqual([]);
  });

  it.runIf(hasZsh)('writes a zsh script that zsh -n accepts', () => {
    const check = spawnSync('zsh', ['-n', join(dir, 'conclave.zsh')], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });
});
