import { describe, expect, it } from 'vitest';
import { defaultLimits, type RaftConfigInput, type RaftLimits, resolveConfig } from './config.js';
import { RaftError, RaftErrorCode } from './errors.js';
import { createPrng } from './prng.js';

const base: RaftConfigInput = { id: 'a', prng: createPrng(1) };

function configError(input: Partial<RaftConfigInput>): RaftError | null {
  try {
    resolveConfig({ ...base, ...input });
    return null;
  } catch (error) {
    if (error instanceof RaftError) return error;
    throw error;
  }
}

describe('resolveConfig', () => {
  it('fills in the defaults: PreVote and CheckQuorum on, applied 0', () => {
    const config = resolveConfig(base);
    expect(config).toMatchObject({ ...defaultLimits, preVote: true, checkQuorum: true, applied: 0, id: 'a' });
  });

  it('accepts the defaults and tight but consistent limits', () => {
    expect(configError({})).toBeNull();
    expect(
      configError({
        electionTimeoutTicks: 2,
        heartbeatIntervalTicks: 1,
        leaseClockDriftTicks: 0,
        proposalBytesMax: 1,
        uncommittedBytesMax: 1,
      }),
    ).toBeNull();
  });

  const positive: (keyof RaftLimits)[] = [
    'electionTimeoutTicks',
    'heartbeatIntervalTicks',
    'messageEntriesMax',
    'messageBytesMax',
    'inflightMessagesMax',
    'uncommittedBytesMax',
    'proposalBytesMax',
    'applyBytesMax',
    'readIndexPendingMax',
    'snapshotBytesMax',
  ];
  for (const key of positive) {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`rejects ${key} = ${bad} with CONFIG_INVALID`, () => {
        const error = configError({ [key]: bad });
        expect(error?.code).toBe(RaftErrorCode.ConfigInvalid);
        expect(error?.message).toContain(key);
      });
    }
  }

  it('rejects an empty id', () => {
    expect(configError({ id: '' })?.code).toBe(RaftErrorCode.ConfigInvalid);
  });

  it('rejects a heartbeat interval not below the election timeout', () => {
    expect(configError({ electionTimeoutTicks: 5, heartbeatIntervalTicks: 5 })?.code).toBe(
      RaftErrorCode.ConfigInvalid,
    );
    expect(configError({ electionTimeoutTicks: 5, heartbeatIntervalTicks: 6 })?.code).toBe(
      RaftErrorCode.ConfigInvalid,
    );
  });

  it('rejects a lease clock drift outside [0, electionTimeoutTicks)', () => {
    for (const bad of [-1, 0.5, 10, 11]) {
      expect(configError({ electionTimeoutTicks: 10, leaseClockDriftTicks: bad })?.code).toBe(
        RaftErrorCode.ConfigInvalid,
      );
    }
    expect(configError({ electionTimeoutTicks: 10, leaseClockDriftTicks: 9 })).toBeNull();
  });

  it('rejects proposalBytesMax above uncommittedBytesMax', () => {
    expect(configError({ proposalBytesMax: 101, uncommittedBytesMax: 100 })?.code).toBe(
      RaftErrorCode.ConfigInvalid,
    );
  });

  it('rejects a negative or fractional applied index', () => {
    expect(configError({ applied: -1 })?.code).toBe(RaftErrorCode.ConfigInvalid);
    expect(configError({ applied: 0.5 })?.code).toBe(RaftErrorCode.ConfigInvalid);
  });
});
