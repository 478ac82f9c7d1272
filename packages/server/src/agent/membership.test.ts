/**
 * Joining and promotion on in-memory hosts: the membership service of each server talks to
 * the others through a loopback control channel that round-trips every value through the
 * transport's codec; Raft traffic goes over the host tests' loopback network. Time is ticks
 * driven by the test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '@conclave/raft';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { MultiRaftHost } from '../host/host.js';
import { LoopbackNetwork, MemoryDurableLog } from '../host/testing/in-memory.js';
import { encodeKvCommand, KvStateMachine } from '../host/testing/kv-state-machine.js';
import { decodeBody, encodeValue } from '../transport/codec.js';
import { AddressBook } from './address-book.js';
import { learnFromConfChange, MembershipService } from './membership.js';
import type { JoinReply, MemberInfo } from './membership-protocol.js';
import { LearnerPromoter, type PromotionLimits } from './promotion.js';

const root = mkdtempSync(join(tmpdir(), 'conclave-membership-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });
const learnerStableTicks = 20;

interface Server {
  readonly id: NodeId;
  readonly host: MultiRaftHost<unknown>;
  readonly machines: Map<number, KvStateMachine>;
  readonly book: AddressBook;
  readonly service: MembershipService;
  readonly promoter: LearnerPromoter;
}

function createWorld(options: {
  groupCount: number;
  forwardTimeoutMs?: number;
  promotion?: Partial<PromotionLimits>;
}) {
  const net = new LoopbackNetwork();
  const servers = new Map<NodeId, Server>();
  /** Control values are encoded and decoded as on the wire, and delivered asynchronously. */
  const down = new Set<NodeId>();
  const add = (id: NodeId, voters: readonly NodeId[]): Server => {
    const machines = new Map<number, KvStateMachine>();
    const book = AddressBook.open({ dir: mkdtempSync(join(root, `${id}-`)), logger });
    const host: MultiRaftHost<unknown> = new MultiRaftHost<unknown>({
      nodeId: id,
      groupCount: options.groupCount,
      log: new MemoryDurableLog({ groupCount: options.groupCount, voters }),
      transport: net.transportFor(id),
      stateMachine: (groupId) => {
        const machine = new KvStateMachine();
        machines.set(groupId, machine);
        return machine;
      },
      seed: servers.size + 1,
      balanceIntervalTicks: 0,
      onConfChange: (event) => learnFromConfChange({ selfId: id, addressBook: book, logger, event }),
    });
    net.register(id, (envelopes) => host.receive(envelopes));
    const service = new MembershipService({
      nodeId: id,
      host,
      addressBook: book,
      logger,
      limits: { forwardTimeoutMs: options.forwardTimeoutMs ?? 2000 },
      control: {
        sendControl: (to, value) => {
          if (down.has(to) || down.has(id)) return;
          const wire = decodeBody(encodeValue(value));
          queueMicrotask(() => servers.get(to)?.service.onControl(id, wire));
        },
      },
    });
    const promoter = new LearnerPromoter({
      host,
      logger,
      limits: { learnerStableTicks, ...options.promotion },
    });
    const server = { id, host, machines, book, service, promoter };
    servers.set(id, server);
    return server;
  };
  for (const id of ['s1', 's2', 's3']) add(id, ['s1', 's2', 's3']);
  const server = (id: NodeId): Server => {
    const found = servers.get(id);
    if (found === undefined) throw new Error(`no server ${id}`);
    return found;
  };
  const tick = async (): Promise<void> => {
    for (const s of servers.values()) {
      s.host.tick();
      s.promoter.tick();
    }
    await flush();
  };
  const tickUntil = async (done: () => boolean, ticksMax: number): Promise<number> => {
    for (let ticks = 0; ticks < ticksMax; ticks++) {
      if (done()) return ticks;
      await tick();
    }
    throw new Error(`condition not reached within ${ticksMax} ticks`);
  };
  const leaderOf = (groupId: number): Server | undefined => {
    const leaders = [...servers.values()].filter((s) => s.host.group(groupId).raw.status().role === 'leader');
    return leaders.length === 1 ? leaders[0] : undefined;
  };
  const status = (id: NodeId, groupId: number) => server(id).host.group(groupId).raw.status();
  return { net, servers, add, server, tick, tickUntil, leaderOf, status, down };
}

type World = ReturnType<typeof createWorld>;

/** Let every scheduled turn, microtask and loopback delivery run: no timers, no time passes. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Elect, then give group g's leadership to leaders[g]. */
async function arrangeLeaders(world: World, leaders: readonly NodeId[]): Promise<void> {
  for (const [groupId, want] of leaders.entries()) {
    await world.tickUntil(() => world.leaderOf(groupId) !== undefined, 300);
    const leader = world.leaderOf(groupId);
    if (leader !== undefined && leader.id !== want) leader.host.group(groupId).raw.transferLeader(want);
    await world.tickUntil(() => world.leaderOf(groupId)?.id === want, 100);
  }
}

async function write(world: World, groupId: number, key: string): Promise<void> {
  const leader = world.leaderOf(groupId);
  if (leader === undefined) throw new Error(`no leader of group ${groupId}`);
  const data = encodeKvCommand({ op: 'put', key, value: new TextEncoder().encode(`value of ${key}`) });
  const done = leader.host.propose({ groupId, data });
  await world.tickUntil(
    () => [...world.servers.values()].every((s) => s.machines.get(groupId)?.get(key)),
    20,
  );
  await done;
}

const joiner: MemberInfo = {
  nodeId: 's4',
  raft: { host: '127.0.0.1', port: 8304 },
  http: { host: '127.0.0.1', port: 8504 },
};

/** Ask `via` while ticking, until the reply comes. */
async function ask(
  world: World,
  options: { from: NodeId; via: NodeId; groupIds: number[]; member?: MemberInfo },
) {
  const outcome: { reply: JoinReply | null; error: unknown } = { reply: null, error: null };
  world
    .server(options.from)
    .service.requestJoin({
      to: options.via,
      member: options.member ?? joiner,
      groupIds: options.groupIds,
      timeoutMs: 5000,
    })
    .then(
      (r) => {
        outcome.reply = r;
      },
      (error: unknown) => {
        outcome.error = error;
      },
    );
  await world.tickUntil(() => outcome.reply !== null || outcome.error !== null, 50);
  if (outcome.reply === null) throw outcome.error;
  return outcome.reply;
}

const statuses = (reply: JoinReply) =>
  Object.fromEntries(
    [...reply.results].sort((a, b) => a.groupId - b.groupId).map((r) => [r.groupId, r.status]),
  );

describe('joining through any member', () => {
  it('adds the joiner to every group, forwarding to leaders; it catches up from an empty log, then is promoted', async () => {
    const world = createWorld({ groupCount: 2 });
    await arrangeLeaders(world, ['s1', 's2']);
    await write(world, 0, 'before-0');
    await write(world, 1, 'before-1');
    const s4 = world.add('s4', []);
    // s4 asks s3, which leads neither group: both requests are forwarded.
    const first = await ask(world, { from: 's4', via: 's3', groupIds: [0, 1] });
    expect(statuses(first)).toEqual({ 0: 'proposed', 1: 'proposed' });
    expect(first.results.map((r) => r.leaderId).sort()).toEqual(['s1', 's2']);
    expect(first.groupCount).toBe(2);
    // The reply lists every server the member knows, so the joiner can dial them all.
    expect(first.members.map((m) => m.nodeId)).toContain('s4');
    await world.tickUntil(
      () => [0, 1].every((g) => world.status('s1', g).confState.learners.includes('s4')),
      50,
    );
    const again = await ask(world, { from: 's4', via: 's3', groupIds: [0, 1] });
    expect(statuses(again)).toEqual({ 0: 'member', 1: 'member' });

    // It starts from nothing and receives both groups: a snapshot names the members, the log the rest.
    await world.tickUntil(
      () => [0, 1].every((g) => s4.machines.get(g)?.get(`before-${g}`) !== undefined),
      100,
    );
    expect(world.status('s4', 0).confState).toEqual({ voters: ['s1', 's2', 's3'], learners: ['s4'] });
    // Every member learned where it listens from the change's context, s3 included, which
    // leads nothing and forwarded only.
    for (const id of ['s1', 's2', 's3']) {
      expect(world.server(id).book.get('s4')).toEqual({ raft: joiner.raft, http: joiner.http });
    }

    // Promotion waits learnerStableTicks of catch-up, then every group has four voters.
    const waited = await world.tickUntil(
      () =>
        [0, 1].every(
          (g) =>
            world.status('s1', g).confState.voters.includes('s4') ||
            world.status('s2', g).confState.voters.includes('s4'),
        ),
      learnerStableTicks * 4,
    );
    expect(waited).toBeGreaterThanOrEqual(learnerStableTicks - 5);
    await world.tickUntil(
      () =>
        [...world.servers.keys()].every((id) =>
          [0, 1].every((g) => world.status(id, g).confState.voters.length === 4),
        ),
      50,
    );
    expect(world.status('s4', 1).confState).toEqual({ voters: ['s1', 's2', 's3', 's4'], learners: [] });
    // And it counts: writes commit with s4 voting.
    await write(world, 1, 'after');
    expect(s4.machines.get(1)?.get('after')).toBeDefined();
  });

  it('answers member, and proposes nothing, when asked again after the join', async () => {
    const world = createWorld({ groupCount: 1 });
    await arrangeLeaders(world, ['s1']);
    world.add('s4', []);
    await ask(world, { from: 's4', via: 's1', groupIds: [0] });
    await world.tickUntil(() => world.status('s1', 0).confState.learners.includes('s4'), 50);
    const lastIndex = world.status('s1', 0).lastIndex;
    const reply = await ask(world, { from: 's4', via: 's2', groupIds: [0] });
    expect(statuses(reply)).toEqual({ 0: 'member' });
    expect(world.status('s1', 0).lastIndex).toBe(lastIndex);
  });

  it('replicates dialable addresses when the joiner announces a wildcard host', async () => {
    const world = createWorld({ groupCount: 1 });
    await arrangeLeaders(world, ['s2']);
    world.add('s4', []);
    // The handshake of s4's connection taught s1 the host it came from.
    world.server('s1').book.learn('s4', { raft: { host: '10.0.0.4', port: 8304 } });
    const wildcard: MemberInfo = {
      nodeId: 's4',
      raft: { host: '0.0.0.0', port: 8304 },
      http: { host: '::', port: 8504 },
    };
    await ask(world, { from: 's4', via: 's1', groupIds: [0], member: wildcard });
    await world.tickUntil(() => world.status('s3', 0).confState.learners.includes('s4'), 50);
    for (const id of ['s1', 's2', 's3']) {
      expect(world.server(id).book.get('s4')).toEqual({
        raft: { host: '10.0.0.4', port: 8304 },
        http: { host: '10.0.0.4', port: 8504 },
      });
    }
  });

  it('answers pending while another change is under way, and the joiner asks again', async () => {
    const world = createWorld({ groupCount: 1 });
    await arrangeLeaders(world, ['s1']);
    world.add('s4', []);
    world.add('s5', []);
    const both = await Promise.all([
      ask(world, { from: 's4', via: 's1', groupIds: [0] }),
      ask(world, { from: 's5', via: 's1', groupIds: [0], member: { ...joiner, nodeId: 's5' } }),
    ]);
    expect(both.map((r) => r.results[0]?.status).sort()).toEqual(['pending', 'proposed']);
  });

  it('refuses what it cannot do: another server speaking for the joiner, a group that does not exist', async () => {
    const world = createWorld({ groupCount: 1 });
    await arrangeLeaders(world, ['s1']);
    world.add('s4', []);
    const impostor = await ask(world, { from: 's2', via: 's1', groupIds: [0], member: joiner });
    expect(impostor.results[0]).toMatchObject({
      status: 'refused',
      detail: 'node s2 may not ask to add node s4',
    });
    const missing = await ask(world, { from: 's4', via: 's1', groupIds: [7] });
    expect(missing.results[0]).toMatchObject({ groupId: 7, status: 'refused' });
    expect(world.status('s1', 0).confState.learners).toEqual([]);
  });

  it('reports a leader that does not answer a forwarded request as unreachable', async () => {
    const world = createWorld({ groupCount: 1, forwardTimeoutMs: 100 });
    await arrangeLeaders(world, ['s1']);
    world.add('s4', []);
    // Control frames to and from s1 are lost: s2 forwards, and gives up after forwardTimeoutMs
    // (a real timer; the joiner's own wait bounds this one).
    world.down.add('s1');
    const reply = await world
      .server('s4')
      .service.requestJoin({ to: 's2', member: joiner, groupIds: [0], timeoutMs: 5000 });
    expect(reply.results[0]).toMatchObject({ status: 'unreachable', leaderId: 's1' });
    expect(reply.results[0]?.detail).toContain('did not answer a join request within 100 ms');
  });
});

describe('learner promotion', () => {
  it('waits while the learner is cut off, and counts from zero once it is back', async () => {
    // Stable for longer than the activity window, so a learner cut off stops counting in time.
    const stableTicks = 60;
    const world = createWorld({
      groupCount: 1,
      promotion: { learnerStableTicks: stableTicks, learnerActiveWindowTicks: 20 },
    });
    await arrangeLeaders(world, ['s1']);
    world.add('s4', []);
    await ask(world, { from: 's4', via: 's1', groupIds: [0] });
    await world.tickUntil(() => world.status('s4', 0).confState.learners.includes('s4'), 100);
    world.net.setDown('s4', true);
    for (let i = 0; i < 3; i++) await write(world, 0, `while-down-${i}`).catch(() => undefined);
    for (let i = 0; i < stableTicks * 3; i++) await world.tick();
    expect(world.status('s1', 0).confState).toEqual({ voters: ['s1', 's2', 's3'], learners: ['s4'] });
    world.net.setDown('s4', false);
    const waited = await world.tickUntil(
      () => world.status('s1', 0).confState.voters.includes('s4'),
      stableTicks * 4,
    );
    expect(waited).toBeGreaterThanOrEqual(stableTicks);
  });

  it('waits while the learner is more than learnerLagEntriesMax behind', async () => {
    const world = createWorld({ groupCount: 1, promotion: { learnerLagEntriesMax: 2 } });
    await arrangeLeaders(world, ['s1']);
    world.add('s4', []);
    await ask(world, { from: 's4', via: 's1', groupIds: [0] });
    await world.tickUntil(() => world.status('s4', 0).confState.learners.includes('s4'), 100);
    // s4 keeps answering heartbeats (it stays active) but drops every append: it falls behind.
    const s4 = world.server('s4');
    const receive = (envelopes: readonly { message: { type: string } }[]) =>
      s4.host.receive(
        (envelopes as Parameters<typeof s4.host.receive>[0]).filter((e) => e.message.type !== 'app'),
      );
    world.net.register('s4', receive);
    const leader = world.server('s1').host;
    const writes = [0, 1, 2, 3].map((i) =>
      leader.propose({
        groupId: 0,
        data: encodeKvCommand({ op: 'put', key: `behind-${i}`, value: new Uint8Array(1) }),
      }),
    );
    for (let i = 0; i < learnerStableTicks * 3; i++) await world.tick();
    await Promise.all(writes);
    expect(world.status('s1', 0).progress?.get('s4')?.match).toBeLessThan(
      world.status('s1', 0).lastIndex - 2,
    );
    expect(world.status('s1', 0).progress?.get('s4')?.recentActive).toBe(true);
    expect(world.status('s1', 0).confState.learners).toEqual(['s4']);
    world.net.register('s4', (envelopes) => s4.host.receive(envelopes));
    await world.tickUntil(
      () => world.status('s1', 0).confState.voters.includes('s4'),
      learnerStableTicks * 4,
    );
  });
});
