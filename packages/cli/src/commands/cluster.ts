import type { ConclaveClient } from '@conclave/client';
import type { Command } from 'commander';
import { type CliContext, printJson, runWithClient, type ServerFlags, serverOptions } from './common.js';
import { table } from './format.js';
import { type ExitCode, exitCodes } from './io.js';
import { registerOperatorRaftCommands } from './operator-raft.js';
import { registerOperatorStatus } from './operator-status.js';

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
  registerOperatorRaftCommands(raft, ctx);
  registerOperatorStatus(operator, ctx);
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
