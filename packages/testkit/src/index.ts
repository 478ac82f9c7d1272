/**
 * `@conclave/testkit` (private, never published): what tests and benchmarks share to run
 * Conclave for real. Free loopback ports, the one polling helper, real `conclave agent`
 * processes, an in-process development agent and a scripted fake HTTP server.
 */
export { type DevAgent, startDevAgent } from './dev-agent.js';
export { fakeServer, sendCode } from './fake-server.js';
export { freePorts } from './free-ports.js';
export { type FaultKind, Nemesis, type NemesisOptions } from './nemesis.js';
export { pollUntil } from './poll.js';
export * from './processes.js';
