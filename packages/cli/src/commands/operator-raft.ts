import type { ConclaveClient, OperatorOutcome } from '@conclave/client';
import type { Command } from 'commander';
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

interface GroupFlags extends ServerFlags {
  readonly group?: string;
}

/** `operator raft list-peers | remove-peer | transfer-leader`, on the `raft` command. */
export function registerOperatorRaftCommands(raft: Command, ctx: CliContext): void {
  const listPeers = raft
    .command('list-peers')
    .description("list each Raft group's servers: id, address, leader, voter, match index, entries behind")
    .option('--group <n>', 'only this group (default: every group, with totals)');
  serverOptions(listPeers, { json: true }).action((flags: GroupFlags) =>
    runWithClient(ctx, flags, (client) => listRaftPeers(ctx, { client, flags })),
  );

  const remove = raft
    .command('remove-peer')
    .description('remove a server from one Raft group, or from every group it belongs to')
    .argument('<id>', 'the node id of the server')
    .option('--group <n>', 'only this group (default: every group)');
  serverOptions(remove, { json: true }).action((id: string, flags: GroupFlags) =>
    runWithClient(ctx, flags, async (client) => {
      const groupId = parseNatural(flags.group, '--group');
      const outcomes = await client.operator.removePeer({
        id,
        ...(groupId === undefined ? {} : { groupId }),
      });
      return report(ctx, { flags, outcomes, done: (o) => `removed ${id} (index ${String(o.index ?? '-')})` });
    }),
  );

  const transfer = raft
    .command('transfer-leader')
    .description('move the leadership of one Raft group, or of every group the server votes in, to it')
    .argument('<id>', 'the node id of the new leader')
    .option('--group <n>', 'only this group (default: every group the server is a voter of)');
  serverOptions(transfer, { json: true }).action((id: string, flags: GroupFlags) =>
    runWithClient(ctx, flags, async (client) => {
      const groupId = parseNatural(flags.group, '--group');
      const outcomes = await client.operator.transferLeader({
        to: id,
        ...(groupId === undefined ? {} : { groupId }),
      });
      return report(ctx, {
        flags,
        outcomes,
        done: (o) =>
          o.started === true ? `transfer from ${String(o.from)} started` : `${id} leads it already`,
      });
    }),
  );
}

/** One line per group; exit 1 when any group failed. */
function report(
  ctx: CliContext,
  options: {
    flags: ServerFlags;
    outcomes: OperatorOutcome[];
    done: (o: Readonly<Record<string, unknown>>) => string;
  },
): ExitCode {
  const failed = options.outcomes.some((o) => !o.ok);
  if (options.flags.json === true) printJson(ctx.io, options.outcomes);
  else {
    const rows = options.outcomes.map((o) => [
      String(o.groupId),
      o.ok ? options.done(o) : `failed: ${o.message} (${o.code})`,
    ]);
    ctx.io.stdout.write(table([['Group', 'Outcome'], ...rows]));
  }
  return failed ? exitCodes.failed : exitCodes.ok;
}

async function listRaftPeers(
  ctx: CliContext,
  options: { client: ConclaveClient; flags: GroupFlags },
): Promise<ExitCode> {
  const { client, flags } = options;
  const only = parseNatural(flags.group, '--group');
  const groupIds = only === undefined ? (await client.agentSelf()).groups.map((g) => g.groupId) : [only];
  const groups = [];
  for (const groupId of groupIds) {
    const configuration = await client.raftConfiguration({ groupId });
    // The leader's view: match index and entries behind, per member.
    const status = await client.operator.group({ groupId });
    const servers = configuration.servers.map((s) => {
      const member = status.members.find((m) => m.id === s.id);
      return {
        ...s,
        matchIndex: member?.matchIndex ?? null,
        trailingEntries: member?.trailingEntries ?? null,
      };
    });
    groups.push({ groupId, index: configuration.index, commitIndex: status.commitIndex, servers });
  }
  const totals = new Map<string, number>();
  for (const g of groups) {
    for (const s of g.servers) totals.set(s.id, (totals.get(s.id) ?? 0) + (s.trailingEntries ?? 0));
  }
  if (flags.json === true) {
    printJson(ctx.io, only === undefined ? { groups, trailingTotals: Object.fromEntries(totals) } : groups);
    return exitCodes.ok;
  }
  const text = groups.map((g) => {
    const rows = g.servers.map((s) => [
      s.node,
      s.id,
      s.address,
      s.leader ? 'leader' : 'follower',
      String(s.voter),
      String(s.matchIndex ?? '-'),
      String(s.trailingEntries ?? '-'),
    ]);
    const header = ['Node', 'ID', 'Address', 'State', 'Voter', 'Match', 'Trailing'];
    return `Group ${g.groupId} (configuration index ${g.index}, commit index ${g.commitIndex})\n${table([header, ...rows])}`;
  });
  if (only === undefined) {
    const rows = [...totals].map(([id, trailing]) => [id, String(trailing)]);
    text.push(`Totals over ${groups.length} groups\n${table([['ID', 'Trailing'], ...rows])}`);
  }
  ctx.io.stdout.write(text.join('\n'));
  return exitCodes.ok;
}
