import { Command, CommanderError } from 'commander';
import { registerClusterCommands } from './cluster.js';
import { type CliContext, registerGlobalOptions } from './common.js';
import { registerCompletion } from './completion.js';
import { registerCounter } from './counter.js';
import { registerElection } from './election.js';
import { type CliIo, type ExitCode, exitCodes, processIo } from './io.js';
import { registerKvGet } from './kv-get.js';
import { registerKvTransfer } from './kv-transfer.js';
import { registerKvWatch } from './kv-watch.js';
import { registerKvWrite } from './kv-write.js';
import { registerLock } from './lock.js';
import { registerLockPrimitive } from './lock-fenced.js';
import { registerMap } from './map.js';
import { registerOperatorAutopilot } from './operator-autopilot.js';
import { registerSemaphore } from './semaphore.js';
import { registerSet } from './set.js';
import { registerSnapshotCommands } from './snapshot.js';
import { registerValue } from './value.js';

export { type CliIo, type ExitCode, exitCodes, processIo } from './io.js';

/**
 * How commander's own exits (help, a usage error) leave: the process exits (usage errors
 * with 2, not commander's 1), or, in-process, the CommanderError is thrown to runCli.
 */
type CommanderExit = (error: CommanderError) => never;

/**
 * Exit the process as commander asks, with the README's codes: set it on the program before
 * any command is added (`conclave agent` included), so that every command inherits it.
 */
export const processCommanderExit: CommanderExit = (error) => process.exit(commanderExitCode(error));
const throwExit: CommanderExit = (error) => {
  throw error;
};

/** Help and version exit 0; everything else commander reports is a usage error. */
function commanderExitCode(error: CommanderError): ExitCode {
  return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
}

/**
 * Add the client commands (kv, members, operator, lock, snapshot, the primitives) to `program`. By default they use
 * the process's streams and signals and leave their exit code in `process.exitCode`.
 */
export function registerClientCommands(
  program: Command,
  options: { io?: CliIo; exit?: (code: ExitCode) => void; commanderExit?: CommanderExit } = {},
): void {
  const io = options.io ?? processIo();
  const ctx: CliContext = {
    io,
    exit:
      options.exit ??
      ((code) => {
        process.exitCode = code;
      }),
  };
  const commanderExit = options.commanderExit ?? processCommanderExit;
  // `lock` passes everything after its prefix to the command, which commander allows only
  // when the parent reads its own options before the subcommand (it has none besides --help).
  program.enablePositionalOptions();
  // --http-addr and --json before the command, as well as after it.
  registerGlobalOptions(program);
  // Subcommands inherit output and exit handling from the command they are created on.
  const top = (name: string) =>
    program
      .command(name)
      .exitOverride(commanderExit)
      .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  const kv = top('kv').description('read, write, watch, export and import keys');
  registerKvGet(kv, ctx);
  registerKvWrite(kv, ctx);
  registerKvTransfer(kv, ctx);
  registerKvWatch(kv, ctx);
  registerClusterCommands(top, ctx);
  // `operator` is created by the cluster commands; autopilot hangs off it.
  const operator = program.commands.find((c) => c.name() === 'operator');
  if (operator === undefined) throw new Error('registerClusterCommands made no operator command');
  registerOperatorAutopilot(operator, ctx);
  // `lock <prefix> <command>` is Consul's KV lock; `lock acquire|holder|release` the primitive.
  const lock = top('lock');
  registerLock(lock, ctx);
  registerLockPrimitive(lock, ctx);
  // The coordination primitives (docs/primitives.md), through the SDK.
  registerCounter(top('counter'), ctx);
  registerValue(top('value'), ctx);
  registerMap(top('map'), ctx);
  registerSet(top('set'), ctx);
  registerElection(top('election'), ctx);
  registerSemaphore(top('semaphore'), ctx);
  registerSnapshotCommands(
    top('snapshot').description('save, restore and inspect snapshots of every group; keep rolling ones'),
    ctx,
  );
  registerCompletion(top('completion'), ctx);
}

/**
 * Run one client command in-process: `argv` without the program name (e.g. `['kv', 'get',
 * 'a']`). Resolves with the exit code; nothing here exits the process.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let code: ExitCode = exitCodes.ok;
  const program = new Command('conclave')
    .exitOverride(throwExit)
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  registerClientCommands(program, {
    io,
    exit: (c) => {
      code = c;
    },
    commanderExit: throwExit,
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return commanderExitCode(error);
    throw error;
  }
  return code;
}
