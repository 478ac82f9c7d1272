import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeRemovalReason, encodeRemovalContext } from '../service/removal-context.js';
import { RemovalLog } from './removals.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'conclave-removals-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the removal log', () => {
  it('remembers which server left which groups, when and why, across a restart, until it is added back', () => {
    const d = dir();
    const log = RemovalLog.open({ dir: d, logger });
    log.removed({ nodeId: 's3', groupId: 1, atMs: Date.UTC(2026, 0, 1), reason: 'autopilot: gone' });
    log.removed({ nodeId: 's3', groupId: 0, atMs: Date.UTC(2026, 0, 2), reason: 'autopilot: gone' });
    const reopened = RemovalLog.open({ dir: d, logger });
    expect(reopened.list()).toEqual([
      { id: 's3', groups: [0, 1], removedAt: '2026-01-02T00:00:00.000Z', reason: 'autopilot: gone' },
    ]);
    reopened.readded({ nodeId: 's3', groupId: 0 });
    expect(reopened.list()[0]?.groups).toEqual([1]);
    reopened.readded({ nodeId: 's3', groupId: 1 });
    expect(RemovalLog.open({ dir: d, logger }).list()).toEqual([]);
  });

  it('starts empty from a damaged file instead of refusing to start', () => {
    const d = dir();
    writeFileSync(join(d, 'removals.json'), '{not json');
    expect(RemovalLog.open({ dir: d, logger }).list()).toEqual([]);
  });

  it('carries the reason in the change context, and ignores contexts that are not removals', () => {
    expect(decodeRemovalReason(encodeRemovalContext('an operator removed it'))).toBe(
      'an operator removed it',
    );
    expect(decodeRemovalReason(undefined)).toBeNull();
    expect(decodeRemovalReason(Uint8Array.of(0x82, 0xa1, 0x76, 0x01))).toBeNull();
    expect(decodeRemovalReason(encodeRemovalContext('x'.repeat(500)))?.length).toBe(200);
  });
});
