import { describe, expect, it } from 'vitest';
import { errorCatalogue } from '../errors.js';
import { agentOptions } from './options.js';

/**
 * Every code's advice is something a person can act on, and advice that speaks of a limit
 * names the setting that changes it: a `conclave agent` flag or a config-file key. A limit
 * nobody can change is described by what to do instead (slow down, delete keys), not named.
 */

const flags = new Set<string>(agentOptions.map((option) => option.flag));
const configKeys = new Set<string>(agentOptions.map((option) => option.key));

/** Words that say the advice is about a limit, and limit-like names (kvValueBytesMax). */
const limitWords = /\blimits?\b|\bbounds?\b|\bmaximum\b|\bat most\b|\b[a-z]+(?:[A-Z][a-z]*)+Max\b/;
/** Flags other commands own that advice may name. */
const otherFlags = new Set(['--help']);

describe('the error catalogue', () => {
  it.each(Object.entries(errorCatalogue))('%s has advice a person can act on', (_code, { advice }) => {
    expect(advice.trim().length).toBeGreaterThan(10);
    // Advice is an instruction, not a restatement of the status.
    expect(advice).not.toMatch(/^(error|failed|bad request|not found)\b/i);
  });

  it.each(Object.entries(errorCatalogue).filter(([, { advice }]) => limitWords.test(advice)))(
    '%s names the flag or config key of the limit its advice mentions',
    (_code, { advice }) => {
      // A flag, unlike a config key such as "groups", cannot be an ordinary word.
      const namedFlags = (advice.match(/--[a-z][a-z-]*/g) ?? []).filter((flag) => flags.has(flag));
      expect(namedFlags.length).toBeGreaterThan(0);
    },
  );

  it.each(Object.entries(errorCatalogue))('%s names only real flags and settings', (_code, { advice }) => {
    for (const flag of advice.match(/--[a-z][a-z-]*/g) ?? []) {
      expect(flags.has(flag) || otherFlags.has(flag), flag).toBe(true);
    }
    // A limit-like name must be one a person can set.
    for (const name of advice.match(/\b[a-z]+(?:[A-Z][a-z]*)+Max\b/g) ?? []) {
      expect(configKeys.has(name), name).toBe(true);
    }
  });

  it('has advice naming a limit for each limit a user may need to raise', () => {
    const adviceNaming = (key: string) =>
      Object.entries(errorCatalogue)
        .filter(([, { advice }]) => advice.includes(key))
        .map(([code]) => code);
    expect(adviceNaming('kvValueBytesMax')).toEqual(['VALUE_TOO_LARGE', 'TXN_TOO_LARGE']);
    expect(adviceNaming('txnOpsMax')).toEqual(['TXN_TOO_LARGE']);
    expect(adviceNaming('httpHeaderBytesMax')).toEqual(['HEADERS_TOO_LARGE']);
  });
});
