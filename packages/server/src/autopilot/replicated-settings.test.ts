/**
 * Autopilot's settings in group 0's state machine: a versioned command with a check-and-set,
 * kept across snapshots, and refused (asserted on) when malformed.
 */
import { type Entry, EntryType, RaftInvariantError } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { type AutopilotSettings, autopilotSettingsToWire } from '../fsm/autopilot.js';
import { commandVersion, decodeCommand, encodeCommand } from '../fsm/commands.js';
import { ConclaveFsm } from '../fsm/fsm.js';
import { FsmDriver } from '../fsm/testing/driver.js';
import { parseGroupCall } from '../service/validate-call.js';
import { defaultAutopilotSettings } from './config.js';

const tuned: AutopilotSettings = { ...defaultAutopilotSettings, minQuorum: 3, deadServerThresholdMs: 1500 };

function setAutopilot(d: FsmDriver, settings: AutopilotSettings, cas: number | null = null) {
  const result = d.apply({ type: 'autopilot-config', settings, cas });
  if (result.type !== 'autopilot-config') throw new Error(`unexpected ${result.type}`);
  return result;
}

describe('the autopilot-config command', () => {
  it('round-trips through its encoding', () => {
    const command = { type: 'autopilot-config', settings: tuned, cas: 7 } as const;
    expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it('asserts on malformed settings, so a bad entry stops the server rather than diverge', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const wire = autopilotSettingsToWire(tuned);
    const bad = (settings: unknown) => packr.pack([commandVersion, 'autopilot-config', settings, null]);
    expect(() => decodeCommand(bad([...wire.slice(0, 5)]))).toThrow(RaftInvariantError);
    expect(() => decodeCommand(bad(['yes', ...wire.slice(1)]))).toThrow(RaftInvariantError);
    expect(() => decodeCommand(bad([true, -1, ...wire.slice(2)]))).toThrow(RaftInvariantError);
    expect(() =>
      encodeCommand({ type: 'autopilot-config', settings: { ...tuned, minQuorum: 0.5 }, cas: null }),
    ).toThrow(RaftInvariantError);
  });

  it('is checked when forwarded, before it can reach Raft', () => {
    const call = { kind: 'apply', command: { type: 'autopilot-config', settings: tuned, cas: null } };
    expect(parseGroupCall(call)).toEqual(call);
    const broken = { ...call, command: { ...call.command, settings: { ...tuned, maxTrailingLogs: -3 } } };
    expect(() => parseGroupCall(broken)).toThrow(/maxTrailingLogs/);
    expect(
      parseGroupCall({
        kind: 'read',
        query: { kind: 'autopilot-config' },
        read: { consistency: 'stale', maxStaleMs: null, block: null },
      }),
    ).toMatchObject({ query: { kind: 'autopilot-config' } });
  });

  it('replaces the settings, keeping the create index; a cas applies only at the last modify index', () => {
    const d = new FsmDriver();
    expect(d.fsm.autopilot()).toBeNull();
    expect(setAutopilot(d, tuned, 5)).toEqual({ type: 'autopilot-config', ok: false, index: 1 });
    expect(d.fsm.autopilot()).toBeNull();
    expect(setAutopilot(d, tuned, 0).ok).toBe(true);
    d.set('k', 'v');
    const changed = { ...tuned, cleanupDeadServers: false };
    // Last changed at 2: index 3 (the kv write) and 0 (never set) are stale.
    expect(setAutopilot(d, changed, 3).ok).toBe(false);
    expect(setAutopilot(d, changed, 0).ok).toBe(false);
    expect(setAutopilot(d, changed, null)).toEqual({ type: 'autopilot-config', ok: true, index: 6 });
    expect(setAutopilot(d, tuned, 6).ok).toBe(true);
    expect(d.fsm.autopilot()).toEqual({ settings: tuned, createIndex: 2, modifyIndex: 7 });
  });

  it('survives a snapshot and restore, and a version 2 snapshot restores without settings', () => {
    const d = new FsmDriver();
    d.set('a', '1');
    setAutopilot(d, tuned);
    const restored = new ConclaveFsm();
    restored.restore(d.fsm.snapshot());
    expect(restored.autopilot()).toEqual({ settings: tuned, createIndex: 2, modifyIndex: 2 });
    expect(restored.getKey('a')?.modifyIndex).toBe(1);
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const v2 = packr.pack([2, 0, 0, 0, 0, 0]);
    restored.restore(v2);
    expect(restored.autopilot()).toBeNull();
    const entry: Entry = {
      term: 1,
      index: 1,
      type: EntryType.Normal,
      data: encodeCommand({ type: 'autopilot-config', settings: tuned, cas: null }),
    };
    restored.apply(entry);
    expect(restored.autopilot()?.modifyIndex).toBe(1);
  });
});
