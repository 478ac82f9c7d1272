import { agentOptions } from '@conclave/server';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { flagsToConfig, registerAgentCommand } from './agent.js';

/** `conclave agent` with its action replaced: the flags commander parsed, nothing started. */
function parseAgentFlags(argv: readonly string[]): Record<string, unknown> {
  const program = new Command('conclave').exitOverride();
  registerAgentCommand(program);
  let parsed: Record<string, unknown> = {};
  program.commands[0]?.action((flags: Record<string, unknown>) => {
    parsed = flags;
  });
  program.parse(['agent', ...argv], { from: 'user' });
  return parsed;
}

describe('conclave agent flags', () => {
  it('has one flag per row of the option table, each setting its config key', () => {
    for (const option of agentOptions) {
      const value = option.kind === 'switch' ? [] : [option.choices?.[0] ?? '7'];
      const config = flagsToConfig(parseAgentFlags([option.flag, ...value]));
      const expected = option.kind === 'switch' ? true : value[0];
      expect(
        Object.entries(config).filter(([, v]) => v !== undefined),
        option.flag,
      ).toEqual([[option.key, expected]]);
    }
  });

  it('leaves unset flags undefined, so the file and the environment fill them', () => {
    const config = flagsToConfig(parseAgentFlags([]));
    expect(Object.values(config).every((value) => value === undefined)).toBe(true);
  });
});
