import type { ConclaveClient } from '@conclave/client';
import type { RemovedServer } from '@conclave/protocol';
import type { Command } from 'commander';
import { type CliContext, printJson, runWithClient, type ServerFlags, serverOptions } from './common.js';
import { table } from './format.js';
import { type ExitCode, exitCodes } from './io.js';

/** `operator status`: the cluster, each group from its leader, each server's own view. */
export function registerOperatorStatus(operator: Command, ctx: CliContext): void {
  const status = operator
    .command('status')
    .description("print the cluster's servers, every group's leader and indexes, and each member's state");
  serverOptions(status, { json: true }).action((flags: ServerFlags) =>
    runWithClient(ctx, flags, (client) => printStatus(ctx, { client, flags })),
  );
}

async function printStatus(
  ctx: CliContext,
  options: { client: ConclaveClient; flags: ServerFlags },
): Promise<ExitCode> {
  const { client } = options;
  const cluster = await client.operator.cluster();
  const groups = [];
  // One at a time: an operator command should not add a burst of load to a struggling cluster.
  for (const g of cluster.groups) groups.push(await client.operator.group({ groupId: g.groupId }));
  const members = await client.operator.members();
  if (options.flags.json === true) {
    printJson(ctx.io, { cluster, groups, members });
    return exitCodes.ok;
  }
  const serverRows = cluster.servers.map((s) => [
    s.id,
    s.address,
    String(s.voterOf),
    String(s.learnerOf),
    String(s.leaderOf),
  ]);
  const groupRows = groups.map((g) => [
    String(g.groupId),
    g.leader ?? '-',
    String(g.term),
    g.followers.join(',') || '-',
    String(g.commitIndex),
    String(g.lastIndex),
    String(g.logEntries),
    `${g.snapshotIndex}${g.snapshotTime === null ? '' : ` at ${g.snapshotTime}`}`,
  ]);
  const memberRows = members.flatMap((m) =>
    m.error !== null
      ? [[m.id, '-', 'unreachable', '-', '-', '-', m.error]]
      : m.groups.map((g) => [
          m.id,
          String(g.groupId),
          g.state,
          g.members.find((x) => x.id === m.id)?.voter === false ? 'learner' : 'voter',
          String(g.term),
          `${g.lastContactMs} ms`,
          `${g.snapshotIndex}${g.snapshotTime === null ? '' : ` at ${g.snapshotTime}`}`,
        ]),
  );
  ctx.io.stdout.write(
    [
      `Servers\n${table([['ID', 'Address', 'Voter of', 'Learner of', 'Leads'], ...serverRows])}`,
      `Groups\n${table([['Group', 'Leader', 'Term', 'Followers', 'Commit', 'Last', 'Log', 'Snapshot'], ...groupRows])}`,
      `Members\n${table([['Server', 'Group', 'State', 'Kind', 'Term', 'Last contact', 'Snapshot'], ...memberRows])}`,
      ...removedSection(cluster.removedServers ?? []),
    ].join('\n'),
  );
  return exitCodes.ok;
}

/** Servers removed from groups and not added back: which, from what, when, why. */
function removedSection(removed: readonly RemovedServer[]): string[] {
  if (removed.length === 0) return [];
  const rows = removed.map((r) => [r.id, r.groups.join(','), r.removedAt, r.reason]);
  return [`Removed (not added back)\n${table([['Server', 'Groups', 'Removed at', 'Reason'], ...rows])}`];
}
