import {
  AutopilotClient,
  type AutopilotConfiguration,
  type AutopilotHealthReply,
  type AutopilotSettingsUpdate,
  type AutopilotStateReply,
} from '@conclave/client';
import { parseGoDuration } from '@conclave/protocol';
import type { Command } from 'commander';
import {
  type CliContext,
  parseNatural,
  printJson,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
} from './common.js';
import { table } from './format.js';
import { type ExitCode, exitCodes } from './io.js';

interface SetFlags extends ServerFlags {
  readonly cleanupDeadServers?: string;
  readonly lastContactThreshold?: string;
  readonly maxTrailingLogs?: string;
  readonly minQuorum?: string;
  readonly serverStabilizationTime?: string;
  readonly cas?: string;
}

/** `operator autopilot get-config | set-config | state | health`, on the `operator` command. */
export function registerOperatorAutopilot(operator: Command, ctx: CliContext): void {
  const autopilot = operator
    .command('autopilot')
    .description("show and change autopilot's configuration, health and state");
  const withAutopilot =
    <F extends ServerFlags>(body: (client: AutopilotClient, flags: F) => Promise<ExitCode>) =>
    (flags: F) =>
      runWithClient(ctx, flags, async (conclave) => {
        const client = new AutopilotClient({ baseUrl: conclave.baseUrl });
        try {
          return await body(client, flags);
        } finally {
          await client.close();
        }
      });

  const get = autopilot.command('get-config').description("show autopilot's configuration");
  serverOptions(get, { json: true }).action(
    withAutopilot(async (client, flags) => {
      const config = await client.configuration();
      if (flags.json === true) printJson(ctx.io, config);
      else ctx.io.stdout.write(configText(config));
      return exitCodes.ok;
    }),
  );

  const set = autopilot
    .command('set-config')
    .description("change autopilot's configuration; settings left out keep their values")
    .option('--cleanup-dead-servers <bool>', 'remove failed servers automatically (true or false)')
    .option('--last-contact-threshold <duration>', 'a server is unhealthy past this without contact (200ms)')
    .option('--max-trailing-logs <n>', 'a server is unhealthy this many entries behind the leader')
    .option('--min-quorum <n>', 'dead server cleanup never leaves fewer voters than this')
    .option('--server-stabilization-time <duration>', 'how long a new server stays healthy before promotion')
    .option('--cas <index>', "only if the configuration's ModifyIndex is still this");
  serverOptions(set, { json: true }).action(
    withAutopilot<SetFlags>(async (client, flags) => {
      const update = settingsUpdate(flags);
      if (Object.keys(update).length === 0) throw usageError('name at least one setting to change');
      const cas = parseNatural(flags.cas, '--cas');
      const written = await client.setConfiguration({ update, ...(cas === undefined ? {} : { cas }) });
      if (flags.json === true) printJson(ctx.io, { written });
      else {
        ctx.io.stdout.write(
          written
            ? 'Configuration updated!\n'
            : `Configuration could not be atomically updated: ModifyIndex is not ${String(cas)}\n`,
        );
      }
      return written ? exitCodes.ok : exitCodes.failed;
    }),
  );

  const state = autopilot.command('state').description("show autopilot's view of every server and group");
  serverOptions(state, { json: true }).action(
    withAutopilot(async (client, flags) => {
      const reply = await client.state();
      if (flags.json === true) printJson(ctx.io, reply);
      else ctx.io.stdout.write(stateText(reply));
      return exitCodes.ok;
    }),
  );

  const health = autopilot
    .command('health')
    .description('show the health of every server and group; exit 1 when any is unhealthy');
  serverOptions(health, { json: true }).action(
    withAutopilot(async (client, flags) => {
      const reply = await client.health();
      if (flags.json === true) printJson(ctx.io, reply);
      else ctx.io.stdout.write(healthText(reply));
      return reply.Healthy ? exitCodes.ok : exitCodes.failed;
    }),
  );
}

/** The flags given, as the PUT body's fields; each checked here so a typo is a usage error. */
export function settingsUpdate(flags: SetFlags): AutopilotSettingsUpdate {
  const cleanup = flags.cleanupDeadServers;
  if (cleanup !== undefined && cleanup !== 'true' && cleanup !== 'false') {
    throw usageError(`--cleanup-dead-servers must be true or false, got ${JSON.stringify(cleanup)}`);
  }
  const trailing = parseNatural(flags.maxTrailingLogs, '--max-trailing-logs');
  const minQuorum = parseNatural(flags.minQuorum, '--min-quorum');
  return {
    ...(cleanup === undefined ? {} : { CleanupDeadServers: cleanup === 'true' }),
    ...durationSetting('LastContactThreshold', flags.lastContactThreshold, '--last-contact-threshold'),
    ...(trailing === undefined ? {} : { MaxTrailingLogs: trailing }),
    ...(minQuorum === undefined ? {} : { MinQuorum: minQuorum }),
    ...durationSetting(
      'ServerStabilizationTime',
      flags.serverStabilizationTime,
      '--server-stabilization-time',
    ),
  };
}

function durationSetting<K extends string>(
  field: K,
  text: string | undefined,
  flag: string,
): Partial<Record<K, string>> {
  if (text === undefined) return {};
  const ns = parseGoDuration(text);
  if (ns === null || ns < 0) throw usageError(`${flag} must be a duration such as 200ms or 10s`);
  // The server applies the bounds; the text goes as given, as Consul's CLI sends it.
  return { [field]: text } as Partial<Record<K, string>>;
}

export function configText(c: AutopilotConfiguration): string {
  return table([
    ['CleanupDeadServers', String(c.CleanupDeadServers)],
    ['LastContactThreshold', c.LastContactThreshold],
    ['MaxTrailingLogs', String(c.MaxTrailingLogs)],
    ['MinQuorum', String(c.MinQuorum)],
    ['ServerStabilizationTime', c.ServerStabilizationTime],
    ['DeadServerThreshold', c.DeadServerThreshold],
    ['ModifyIndex', String(c.ModifyIndex)],
  ]);
}

const yesNo = (b: boolean) => (b ? 'healthy' : 'unhealthy');

export function healthText(h: AutopilotHealthReply): string {
  const head = `Healthy: ${h.Healthy}\nFailureTolerance: ${h.FailureTolerance}\n\n`;
  const servers = table([
    ['Node', 'Address', 'Role', 'Health', 'LastContact', 'LastIndex', 'StableSince', 'Unhealthy groups'],
    ...h.Servers.map((s) => [
      s.ID,
      s.Address,
      s.Leader ? 'leader' : s.Voter ? 'voter' : 'learner',
      yesNo(s.Healthy),
      s.LastContact ?? '-',
      s.LastIndex === null ? '-' : String(s.LastIndex),
      s.StableSince,
      s.UnhealthyGroups.length === 0 ? '-' : s.UnhealthyGroups.join(','),
    ]),
  ]);
  const groups = table([
    ['Group', 'Leader', 'Health', 'FailureTolerance', 'Unhealthy servers'],
    ...h.Groups.map((g) => [
      String(g.GroupId),
      g.Leader ?? '-',
      yesNo(g.Healthy),
      String(g.FailureTolerance),
      g.UnhealthyServers.length === 0
        ? '-'
        : g.UnhealthyServers.map((u) => `${u.ID} (${u.Reason})`).join(', '),
    ]),
  ]);
  const removed = h.RemovedServers ?? [];
  const removedText =
    removed.length === 0
      ? ''
      : `\nRemoved (not added back)\n${table([
          ['Node', 'Groups', 'RemovedAt', 'Reason'],
          ...removed.map((r) => [r.ID, r.Groups.join(','), r.RemovedAt, r.Reason]),
        ])}`;
  return `${head}${servers}\n${groups}${removedText}`;
}

export function stateText(s: AutopilotStateReply): string {
  const head = `Healthy: ${s.Healthy}\nFailureTolerance: ${s.FailureTolerance}\nLeader: ${s.Leader || '-'}\nVoters: ${s.Voters.join(', ')}\n\n`;
  const servers = table([
    ['Node', 'Address', 'Status', 'Health', 'LastContact', 'LastIndex', 'StableSince'],
    ...Object.values(s.Servers).map((v) => [
      v.ID,
      v.Address,
      v.Status,
      yesNo(v.Healthy),
      v.LastContact ?? '-',
      v.LastIndex === null ? '-' : String(v.LastIndex),
      v.StableSince,
    ]),
  ]);
  const groups = table([
    ['Group', 'Leader', 'Health', 'FailureTolerance', 'Voters'],
    ...s.Groups.map((g) => [
      String(g.GroupId),
      g.Leader || '-',
      yesNo(g.Healthy),
      String(g.FailureTolerance),
      g.Voters.join(','),
    ]),
  ]);
  return `${head}${servers}\n${groups}`;
}
