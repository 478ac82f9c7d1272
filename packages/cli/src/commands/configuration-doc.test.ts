import { readFileSync } from 'node:fs';
import { type AgentOption, agentOptions } from '@conclave/server';
import { formatOptionValue } from '@conclave/server/agent-options';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerAgentCommand } from './agent.js';

/**
 * docs/configuration.md lists every `conclave agent` flag with its config key, environment
 * variable, default, unit and range, exactly as the agent's option table declares them and
 * as the command parses them: a setting added, renamed or re-defaulted without the doc fails
 * here.
 */

const doc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');

interface Row {
  flag: string;
  key: string;
  env: string;
  default: string;
  unit: string;
  range: string;
  description: string;
}

/** The rows of the table whose header starts `| flag | config key |`, backticks stripped. */
function documentedRows(): Row[] {
  const lines = doc.split('\n');
  const header = lines.findIndex((line) => line.startsWith('| flag | config key | environment variable |'));
  expect(header, 'the settings table').toBeGreaterThanOrEqual(0);
  const rows: Row[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [flag = '', key = '', env = '', value = '', unit = '', range = '', description = ''] = line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
    const bare = (cell: string) => cell.replace(/^`(.*)`$/, '$1');
    rows.push({
      flag: bare(flag),
      key: bare(key),
      env: bare(env),
      default: bare(value),
      unit,
      range,
      description,
    });
  }
  return rows;
}

const kindUnits: Partial<Record<AgentOption['kind'], string>> = {
  text: 'text',
  address: 'host:port',
  join: 'list',
  bytes: 'bytes',
  duration: 'duration',
  switch: 'true or false',
};

/** What the doc must say of one row of the option table. */
function expectedRow(option: AgentOption): Omit<Row, 'description'> {
  const choices = option.choices ?? [];
  return {
    flag: option.arg === null ? option.flag : `${option.flag} ${option.arg}`,
    key: option.key,
    env: option.env,
    default: option.default === null ? '—' : formatOptionValue(option, option.default),
    unit:
      option.kind === 'choice'
        ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`
        : (option.unit ?? kindUnits[option.kind] ?? ''),
    range:
      option.range === null
        ? ''
        : `${formatOptionValue(option, option.range.min)} to ${formatOptionValue(option, option.range.max)}`,
  };
}

/** `conclave agent`'s flags as commander declares them (help excepted), with their argument. */
function declaredFlags(): string[] {
  const program = new Command('conclave');
  registerAgentCommand(program);
  const agent = program.commands.find((command) => command.name() === 'agent');
  return (agent?.options ?? []).map((option) => option.flags);
}

describe('docs/configuration.md', () => {
  it('documents every setting of the option table: flag, config key, variable, default, unit, range', () => {
    const documented = documentedRows()
      .filter((row) => row.key !== '—')
      .map(({ description: _, ...row }) => row);
    expect(documented).toEqual(agentOptions.map(expectedRow));
  });

  it('documents every flag `conclave agent` takes, and no other', () => {
    expect(documentedRows().map((row) => row.flag)).toEqual(declaredFlags());
  });

  it('says what each setting sets', () => {
    for (const row of documentedRows()) expect(row.description.length, row.flag).toBeGreaterThan(20);
  });

  it('gives flags without a setting (--config) no config key or variable', () => {
    const flagOnly = documentedRows().filter((row) => row.key === '—');
    expect(flagOnly.map((row) => [row.flag, row.env])).toEqual([['--config <file>', '—']]);
  });
});
