import type { NodeId } from '@conclave/raft';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { IdentifyError } from '../transport/identify.js';
import type { PeerIdentity } from '../transport/types.js';
import type { Address, JoinTarget } from './config.js';
import { formsNewCluster, joinCluster } from './join.js';
import type { JoinGroupResult, JoinReply, JoinStatus, MemberInfo } from './membership-protocol.js';

const logger = pino({ level: 'silent' });
const self: MemberInfo = { nodeId: 's4', raft: { host: '127.0.0.1', port: 8304 }, http: null };
const bare = (port: number): JoinTarget => ({ nodeId: null, raft: { host: '127.0.0.1', port } });
/** Short delays: the loop's own backoff, not the test waiting on anything. */
const fast = { retryDelayMinMs: 1, retryDelayMaxMs: 4, requestTimeoutMs: 100 };

function reply(statuses: Record<number, JoinStatus>, groupCount = 2): JoinReply {
  const results: JoinGroupResult[] = Object.entries(statuses).map(([g, status]) => ({
    groupId: Number(g),
    status,
    leaderId: 's1',
    detail: status === 'refused' ? 'no' : null,
  }));
  return { type: 'joinReply', requestId: 1, groupCount, results, members: [] };
}

/** A scripted cluster: each call answers with the next script item (an error is thrown). */
function scripted(script: readonly (JoinReply | Error)[]) {
  const calls: { to: NodeId; groupIds: readonly number[] }[] = [];
  const identified: Address[] = [];
  return {
    calls,
    identified,
    identify: async (address: Address): Promise<PeerIdentity> => {
      identified.push(address);
      if (address.port === 1) {
        throw new IdentifyError({ reason: 'unreachable', message: 'connection refused' });
      }
      return { nodeId: `n${address.port}`, raft: address, http: null };
    },
    requestJoin: async (request: { to: NodeId; groupIds: readonly number[] }): Promise<JoinReply> => {
      calls.push({ to: request.to, groupIds: [...request.groupIds] });
      const next = script[Math.min(calls.length - 1, script.length - 1)];
      if (next === undefined) throw new Error('empty script');
      if (next instanceof Error) throw next;
      return next;
    },
  };
}

describe('joinCluster', () => {
  it('identifies bare addresses, tries the targets in turn, and asks only for the groups still missing', async () => {
    const cluster = scripted([
      reply({ 0: 'proposed', 1: 'pending' }),
      reply({ 0: 'member', 1: 'proposed' }),
      reply({ 1: 'member' }),
    ]);
    const targets = [bare(1), bare(2), { nodeId: 's3', raft: { host: '127.0.0.1', port: 3 } }];
    const outcome = await joinCluster({ self, targets, groupCount: 2, ...cluster, logger, limits: fast });
    // In turn: the first target does not answer, n2 is identified and asked, s3 asked by
    // name (no identify), the first fails again, n2 answers the last missing group.
    expect(cluster.identified.map((a) => a.port)).toEqual([1, 2, 1, 2]);
    expect(cluster.calls).toEqual([
      { to: 'n2', groupIds: [0, 1] },
      { to: 's3', groupIds: [0, 1] },
      { to: 'n2', groupIds: [1] },
    ]);
    expect(outcome.attempts).toBe(5);
  });

  it('gives up after attemptsMax with JOIN_FAILED naming the last problem', async () => {
    const cluster = scripted([reply({ 0: 'noLeader', 1: 'noLeader' })]);
    const failure = await joinCluster({
      self,
      targets: [bare(2)],
      groupCount: 2,
      ...cluster,
      logger,
      limits: { ...fast, attemptsMax: 4 },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConclaveError);
    expect((failure as ConclaveError).code).toBe('JOIN_FAILED');
    expect((failure as ConclaveError).message).toMatch(
      /after 4 attempts .* 2 groups do not list this server yet: group 0 noLeader/,
    );
    expect(cluster.calls).toHaveLength(4);
  });

  it('gives up after timeoutMs, however many attempts remain', async () => {
    const cluster = scripted([new ConclaveError({ code: 'TIMEOUT', message: 'no answer' })]);
    const started = Date.now();
    const failure = await joinCluster({
      self,
      targets: [bare(2)],
      groupCount: 2,
      ...cluster,
      logger,
      limits: { ...fast, attemptsMax: 1_000_000, timeoutMs: 150, retryDelayMaxMs: 20 },
    }).catch((error: unknown) => error);
    expect((failure as ConclaveError).code).toBe('JOIN_FAILED');
    expect((failure as ConclaveError).message).toContain('no answer');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('fails at once when a leader refuses, or the cluster runs another number of groups', async () => {
    const refusing = scripted([reply({ 0: 'member', 1: 'refused' })]);
    await expect(
      joinCluster({ self, targets: [bare(2)], groupCount: 2, ...refusing, logger, limits: fast }),
    ).rejects.toThrow(/refused to add s4 to group 1: no/);
    expect(refusing.calls).toHaveLength(1);
    const otherShape = scripted([reply({ 0: 'member' }, 8)]);
    await expect(
      joinCluster({ self, targets: [bare(2)], groupCount: 2, ...otherShape, logger, limits: fast }),
    ).rejects.toThrow(/runs 8 groups and this server 2; start it with --groups 8/);
  });

  it('stops when the server stops', async () => {
    const controller = new AbortController();
    const cluster = scripted([reply({ 0: 'noLeader', 1: 'noLeader' })]);
    const joining = joinCluster({
      self,
      targets: [bare(2)],
      groupCount: 2,
      ...cluster,
      logger,
      limits: { ...fast, retryDelayMinMs: 60_000, retryDelayMaxMs: 60_000 },
      signal: controller.signal,
    });
    controller.abort();
    await expect(joining).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});

describe('formsNewCluster', () => {
  const peers = [{ nodeId: 's2' }, { nodeId: 's3' }];
  it.each([
    [{ dev: true, bootstrapExpect: 1 }, [], true],
    [{ dev: false, bootstrapExpect: 3 }, peers, true],
    [{ dev: false, bootstrapExpect: 1 }, [], true],
    // Not every server named: join instead (a 4th server started with the others' template).
    [{ dev: false, bootstrapExpect: 3 }, [{ nodeId: 's1' }], false],
    [{ dev: false, bootstrapExpect: null }, peers, false],
    [{ dev: false, bootstrapExpect: null }, [], false],
  ])('%j with peers %j: %s', (config, named, expected) => {
    expect(formsNewCluster({ config: { ...config, nodeId: 's1' }, peers: named })).toBe(expected);
  });
});
