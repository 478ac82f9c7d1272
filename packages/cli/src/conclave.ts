#!/usr/bin/env node
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerAgentCommand } from './commands/agent.js';
import { processCommanderExit, registerClientCommands } from './commands/index.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const program = new Command('conclave')
  .description('Conclave: a strongly consistent store for configuration and coordination')
  .version(version, '-v, --version', 'print the version')
  // Set before any command is added, so every command inherits it: a usage error anywhere
  // (an unknown command or option, at the top or in `agent`) exits 2, not commander's 1.
  .exitOverride(processCommanderExit);

registerAgentCommand(program);
// The client commands (kv, members, operator, lock, snapshot) live in ./commands/.
registerClientCommands(program);

await program.parseAsync(process.argv);
