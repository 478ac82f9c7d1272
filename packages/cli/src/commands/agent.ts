import type { ConfigInput } from '@conclave/server';
// Only the option table (no run-time imports): the client commands stay free of the server.
import { type AgentOption, agentOptions, formatOptionValue } from '@conclave/server/agent-options';
import { type Command, Option } from 'commander';

interface AgentFlag {
  readonly key: AgentOption['key'];
  readonly flag: Option;
}

/** A setting's flag, from its row of the agent's option table. */
function agentFlag(option: AgentOption): Option {
  const spec = option.arg === null ? option.flag : `${option.flag} ${option.arg}`;
  const unit = option.unit === null ? '' : ` ${option.unit}`;
  const shownDefault =
    option.default === null || option.kind === 'switch'
      ? ''
      : ` (default ${formatOptionValue(option, option.default)}${unit})`;
  const flag = new Option(spec, `${option.summary}${shownDefault}`);
  return option.choices === null ? flag : flag.choices(option.choices);
}

const agentFlags = (): AgentFlag[] =>
  agentOptions.map((option) => ({ key: option.key, flag: agentFlag(option) }));

/** Flags, as commander hands them over, mapped to settings. Unset flags stay undefined. */
export function flagsToConfig(flags: Record<string, unknown>): ConfigInput {
  const config: ConfigInput = {};
  for (const { key, flag } of agentFlags()) config[key] = flags[flag.attributeName()];
  return config;
}

type ServerModule = typeof import('@conclave/server');

async function runAgent(server: ServerModule, flags: Record<string, unknown>): Promise<void> {
  const { configFromEnv, configFromFile, createAgentLogger, drainAgentLog, resolveAgentConfig, startAgent } =
    server;
  const file = typeof flags.config === 'string' ? configFromFile(flags.config) : {};
  const config = resolveAgentConfig([file, configFromEnv(process.env), flagsToConfig(flags)]);
  const logger = createAgentLogger(config);
  // The last lines say how the server stopped: written out before the exit, not lost in flight.
  const exitAfterLog = (code: number) => void drainAgentLog(logger).then(() => process.exit(code));
  // A server that cannot go on (the cluster refuses to take it back) stops and exits 1, so
  // its supervisor sees the failure instead of a process that waits forever.
  let started: Awaited<ReturnType<ServerModule['startAgent']>> | null = null;
  const onFatal = (): void => {
    if (started === null) exitAfterLog(1);
    else void started.stop({ transferLeadership: false }).finally(() => exitAfterLog(1));
  };
  const agent = await startAgent({ config, logger, onFatal }).catch(async (error: unknown) => {
    // Also in the log, at error level, for whoever reads the logs rather than the terminal.
    const code = server.isExpectedError(error) ? error.code : undefined;
    // An expected refusal needs no stack trace; anything else keeps it, for the bug report.
    logger.error(
      code === undefined ? { err: error } : { code },
      `refusing to start: ${error instanceof Error ? error.message : String(error)}`,
    );
    await drainAgentLog(logger);
    throw error;
  });
  started = agent;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: transferring leadership, flushing');
    agent.stop().then(
      () => exitAfterLog(0),
      (error: unknown) => {
        logger.error({ err: error }, 'unclean shutdown');
        exitAfterLog(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Announced once a signal can stop it cleanly: whoever waits for this line may stop it next.
  const http = `http://${agent.httpAddress.host}:${agent.httpAddress.port}`;
  process.stdout.write(
    `Conclave ${config.nodeId} is up: HTTP ${http}, Raft ${agent.raftAddress.host}:${agent.raftAddress.port}, data ${agent.dataDir}\n` +
      `Try: curl -X PUT --data-binary hello ${http}/v1/kv/greeting && curl ${http}/v1/kv/greeting?raw\n`,
  );
}

/**
 * `conclave agent`: run a server. The only command that needs `@conclave/server`; it
 * exits 2 on a setting the server refuses (an expected failure) and 1 on anything else.
 */
export function registerAgentCommand(program: Command): void {
  const command = program
    .command('agent')
    .description('run a Conclave server')
    .option('--config <file>', 'read settings from a JSON or YAML file (its keys: docs/configuration.md)');
  for (const { flag } of agentFlags()) command.addOption(flag);
  command.action(async (flags: Record<string, unknown>) => {
    // Loaded here, not at the top: the client commands never load the server (fastify,
    // the Raft host), so they start fast.
    const server = await import('@conclave/server');
    try {
      await runAgent(server, flags);
    } catch (error) {
      process.stderr.write(`conclave agent: ${error instanceof Error ? error.message : String(error)}\n`);
      if (server.isExpectedError(error)) process.stderr.write(`  ${server.describeError(error).advice}\n`);
      process.exit(server.isExpectedError(error) ? 2 : 1);
    }
  });
}
