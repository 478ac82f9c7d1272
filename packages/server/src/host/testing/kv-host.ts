/**
 * One server of an in-process test cluster: a MultiRaftHost of KvStateMachines on a
 * LoopbackNetwork, registered to receive, with its machines by group for the test to read.
 */
import type { NodeId } from '@conclave/raft';
import type { GroupLimits } from '../group.js';
import { MultiRaftHost } from '../host.js';
import type { DurableLog } from '../ports.js';
import type { LoopbackNetwork } from './in-memory.js';
import { type KvResult, KvStateMachine } from './kv-state-machine.js';

export interface KvHost<Log extends DurableLog> {
  readonly id: NodeId;
  readonly host: MultiRaftHost<KvResult>;
  readonly log: Log;
  readonly machines: Map<number, KvStateMachine>;
}

export function kvHost<Log extends DurableLog>(options: {
  id: NodeId;
  seed: number;
  groupCount: number;
  log: Log;
  net: LoopbackNetwork;
  limits?: Partial<GroupLimits>;
  balanceIntervalTicks?: number;
  clock?: { tickMs: number; now: () => number };
}): KvHost<Log> {
  const { id, log, net } = options;
  const machines = new Map<number, KvStateMachine>();
  const host = new MultiRaftHost<KvResult>({
    nodeId: id,
    groupCount: options.groupCount,
    log,
    transport: net.transportFor(id),
    stateMachine: (groupId) => {
      const machine = new KvStateMachine();
      machines.set(groupId, machine);
      return machine;
    },
    seed: options.seed,
    balanceIntervalTicks: options.balanceIntervalTicks ?? 0,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  net.register(id, (envelopes) => host.receive(envelopes));
  return { id, host, log, machines };
}
