import type { Command } from 'commander';
import type { ConclaveClient } from '../../client/index.js';
import {
  type CliContext,
  parseNatural,
  printJson,
  runWithClient,
  type ServerFlags,
  serverOptions,
} from './common.js';
import { table } from './format.js';
import { type ExitCode, exitCodes } from './io.js';

interface PeersFlags extends ServerFlags {
  readonly group?: string;
}

/** `members` and `operator raft list-peers`; `top` creates a top-level command. */
export function registerClusterCommands(top: (name: string) => Command, ctx: CliContext): void {
  const members = top('members').description(
    "list the cluster's servers (group 0's configuration) and the groups each leads",
  );
  serverOptions(members, { json: true }).action((flags: ServerFlags) =>
    runWithClient(ctx, flags, (client) => listMembers(ctx, { client, flags })),
  );

  const operator = top('operator').description('operate the cluster');
  const raft = operator.command('raft').description("inspect the servers' Raft groups");
  const listPeers = raft
    .command('list-peers')
    .description("list each Raft group's servers: id, address, leader, voter")
    .option('--group <n>', 'only this group (default: every group)');
  serverOptions(listPeers, { json: true }).action((flags: PeersFlags) =>
    runWithClient(ctx, flags, (client) => listRaftPeers(ctx, { client, flags })),
  );
}

async function listMembers(
  ctx: CliContext,
  options: { client: ConclaveClient; flags: ServerFlags },
): Promise<ExitCode> {
  const { client } = options;
  const self = await client.agentSelf();
  const config = await client.raftConfiguration({ groupId: 0 });
  // Leaders of every group as the addressed server knows them.
  const led = new Map<string, number>();
  for (const group of self.groups) {
    if (group.leaderId !== null) led.set(group.leaderId, (led.get(group.leaderId) ?? 0) + 1);
  }
  const members = config.servers.map((s) => ({
    id: s.id,
    address: s.address,
    role: s.voter ? 'voter' : 'learner',
    leader: s.leader,
    groupsLed: led.get(s.id) ?? 0,
  }));
  if (options.flags.json === true) {
    printJson(ctx.io, {
      nodeId: self.nodeId,
      clusterId: self.clusterId,
      groups: self.groups.length,
      members,
    });
    return exitCodes.ok;
  }
  const rows = members.map((m) => [
    m.id,
    m.address,
    m.role,
    m.leader ? 'leader' : 'follower',
    `${m.groupsLed}/${self.groups.length}`,
  ]);
  ctx.io.stdout.write(table([['Node', 'Address', 'Role', 'Group 0', 'Groups led'], ...rows]));
  return exitCodes.ok;
}

async function listRaftPeers(
  ctx: CliContext,
  options: { client: ConclaveClient; flags: PeersFlags },
): Promise<ExitCode> {
  const { client, flags } = options;
  const only = parseNatural(flags.group, '--group');
  const groupIds = only === undefined ? (await client.agentSelf()).groups.map((g) => g.groupId) : [only];
  const groups = [];
  for (const groupId of groupIds) groups.push({ groupId, ...(await client.raftConfiguration({ groupId })) });
  if (flags.json === true) {
    printJson(ctx.io, groups);
    return exitCodes.ok;
  }
  const text = groups.map((g) => {
    const rows = g.servers.map((s) => [
      s.node,
      s.id,
      s.address,
      s.leader ? 'leader' : 'follower',
      String(s.voter),
    ]);
    return `Group ${g.groupId} (configuration index ${g.index})\n${table([['Node', 'ID', 'Address', 'State', 'Voter'], ...rows])}`;
  });
  ctx.io.stdout.write(text.join('\n'));
  return exitCodes.ok;
}
