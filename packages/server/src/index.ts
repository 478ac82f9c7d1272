/**
 * `@conclave/server`: run a Conclave server inside your own process. Resolve a config the
 * way `conclave agent` does (defaults, then a file, the environment and flags), start it,
 * and stop it; everything else is the server's own business.
 *
 * ```ts
 * const agent = await startAgent({ config: resolveAgentConfig([{ dev: true, dataDir: './data' }]) });
 * await agent.stop();
 * ```
 */
export { type Agent, DataDirDamagedError, type PeerSpec, startAgent } from './agent/agent.js';
export {
  type Address,
  type AgentConfig,
  type AgentOption,
  agentDefaults,
  agentLimits,
  agentOptions,
  type ConfigInput,
  configFromEnv,
  configFromFile,
  type JoinTarget,
  type LogFormat,
  resolveAgentConfig,
} from './agent/config.js';
export { createAgentLogger, drainAgentLog, effectiveLogFormat } from './agent/logger.js';
export { ConclaveError, describeError, type ErrorCode, errorCatalogue, isExpectedError } from './errors.js';
