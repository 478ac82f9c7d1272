import type { ConfigInput } from '@conclave/server';
import { type Command, Option } from 'commander';

/** Flags, as commander hands them over, mapped to settings. Unset flags stay undefined. */
function flagsToConfig(flags: Record<string, unknown>): ConfigInput {
  return {
    nodeId: flags.nodeId,
    dataDir: flags.dataDir,
    bind: flags.bind,
    httpAddr: flags.httpAddr,
    bootstrapExpect: flags.bootstrapExpect,
    join: flags.join,
    groups: flags.groups,
    dev: flags.dev,
    clusterId: flags.clusterId,
    logLevel: flags.logLevel,
    logFormat: flags.logFormat,
    tickMs: flags.tickMs,
    snapshotThresholdEntries: flags.snapshotThreshold,
    snapshotIntervalMs: flags.snapshotInterval,
    snapshotTrailingEntries: flags.trailingLogs,
    snapshotThresholdBytes: flags.snapshotThresholdBytes,
    snapshotTrailingBytesMax: flags.trailingLogsBytes,
  };
}

type ServerModule = typeof import('@conclave/server');

async function runAgent(server: ServerModule, flags: Record<string, unknown>): Promise<void> {
  const { configFromEnv, configFromFile, createAgentLogger, drainAgentLog, resolveAgentConfig, startAgent } =
    server;
  const file = typeof flags.config === 'string' ? configFromFile(flags.config) : {};
  const config = resolveAgentConfig([file, configFromEnv(process.env), flagsToConfig(flags)]);
  const logger = createAgentLogger(config);
  const agent = await startAgent({ config, logger });
  // The last lines say how the server stopped: written out before the exit, not lost in flight.
  const exitAfterLog = (code: number) => void drainAgentLog(logger).then(() => process.exit(code));
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
  program
    .command('agent')
    .description('run a Conclave server')
    .option('--config <file>', 'read settings from a JSON or YAML file')
    .option('--node-id <id>', "this server's id, stable across restarts")
    .option('--data-dir <dir>', 'where the WAL and snapshots live')
    .option('--bind <host:port>', 'the Raft address other servers reach (default 127.0.0.1:8300)')
    .option('--http-addr <host:port>', 'the HTTP API address (default 127.0.0.1:8500)')
    .option('--bootstrap-expect <n>', 'form a new cluster of n servers')
    .option(
      '--join <addr,...>',
      'servers to meet, as id@host:port (to form a cluster with --bootstrap-expect) or host:port (to join a running one)',
    )
    .option('--groups <n>', 'Raft groups per server (default 8)')
    .option('--cluster-id <id>', 'servers of other clusters are refused')
    .option(
      '--tick-ms <ms>',
      'real time per Raft tick (default 50: heartbeats every 50 ms, elections after 0.5-1 s)',
    )
    .option(
      '--snapshot-threshold <entries>',
      'snapshot a group once this many entries were applied since its last snapshot (default 16384)',
    )
    .option(
      '--snapshot-interval <duration>',
      'also snapshot a group this long after its last one if anything was applied, e.g. 120s, 2m; 0 turns it off (default 120s)',
    )
    .option(
      '--trailing-logs <entries>',
      'entries kept in the log behind a snapshot; must exceed what a group commits while a follower receives a snapshot (default 10240)',
    )
    .option(
      '--snapshot-threshold-bytes <size>',
      'also snapshot a group once the entries applied since its last snapshot take this many bytes, e.g. 64MiB (default 64MiB)',
    )
    .option(
      '--trailing-logs-bytes <size>',
      'at most this many bytes of entries kept behind a snapshot, with --trailing-logs; must exceed what a group writes while a follower receives a snapshot (default 64MiB)',
    )
    .addOption(
      new Option(
        '--log-level <level>',
        'least severe level logged (default info; every HTTP request is logged at debug)',
      ).choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'text (lines for people) or json (for machines); default: text on a terminal, json otherwise',
      ).choices(['text', 'json']),
    )
    .option('--dev', 'one server that elects itself; a temporary data dir unless --data-dir is given')
    .action(async (flags: Record<string, unknown>) => {
      // Loaded here, not at the top: the client commands never load the server (fastify,
      // the Raft host), so they start fast.
      const server = await import('@conclave/server');
      try {
        await runAgent(server, flags);
      } catch (error) {
        process.stderr.write(`conclave agent: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(server.isExpectedError(error) ? 2 : 1);
      }
    });
}
