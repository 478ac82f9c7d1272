#!/usr/bin/env node
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CliOptions, parseCli, usage } from './args.js';
import { type RunResult, runDefaults, runSeed } from './run.js';

/**
 * The simulator's command line: run a range of seeds, one line each, and stop at the first
 * failure with the exact command that replays it. The same seed always gives the same
 * run, so that command reproduces the failure, trace hash included.
 */

function replayCommand(options: CliOptions, seed: number): string {
  const extra = [
    options.faultPhaseMs === runDefaults.faultPhaseMs ? '' : ` --fault-ms ${options.faultPhaseMs}`,
    options.livenessBoundMs === runDefaults.livenessBoundMs
      ? ''
      : ` --liveness-ms ${options.livenessBoundMs}`,
    options.storage === 'memory' ? '' : ` --storage ${options.storage}`,
  ].join('');
  return `node packages/sim/dist/cli.js --seed ${seed} --nodes ${options.nodes} --faults ${options.faultsText}${extra}`;
}

function describeRun(result: RunResult, wallMs: number): string {
  const w = result.workload;
  const lin = result.linearizability === 'unknown' ? 'lin unknown' : `lin ${result.linearizability}`;
  const recovery = result.recoveryMs === null ? '-' : `${result.recoveryMs}ms`;
  return [
    `seed ${result.seed}`,
    result.ok ? 'ok' : `FAIL(${result.failure?.kind})`,
    `ops ${w.completed}/${w.invoked} (${w.abandoned} unknown)`,
    lin,
    `terms ${result.leaderTerms}`,
    `faults ${result.faultLog.length}`,
    `recovery ${recovery}`,
    `msgs ${result.stats.messagesSent}`,
    `vt ${(result.stats.nowMs / 1000).toFixed(1)}s`,
    `hash ${result.traceHash.slice(0, 16)}`,
    `${Math.round(wallMs)}ms`,
  ].join('  ');
}

function run(options: CliOptions): number {
  const started = performance.now();
  let passed = 0;
  let failed = 0;
  let linUnknown = 0;
  for (const seed of options.seeds) {
    const runOptions = {
      seed,
      nodes: options.nodes,
      faults: options.faults,
      faultPhaseMs: options.faultPhaseMs,
      livenessBoundMs: options.livenessBoundMs,
      keepTrace: options.trace,
      storage: options.storage,
    };
    const t0 = performance.now();
    let result = runSeed(runOptions);
    const wallMs = performance.now() - t0;
    if (options.trace) for (const line of result.traceLines) console.log(line);
    if (result.ok && options.checkDeterminism) {
      const again = runSeed(runOptions);
      if (again.traceHash !== result.traceHash) {
        result = {
          ...result,
          ok: false,
          failure: {
            kind: 'error',
            message: `nondeterminism: trace hash ${result.traceHash} then ${again.traceHash} for the same seed`,
          },
        };
      }
    }
    console.log(describeRun(result, wallMs));
    if (result.linearizability === 'unknown') linUnknown++;
    if (result.ok) {
      passed++;
      continue;
    }
    failed++;
    const failure = result.failure;
    console.log(`\nseed ${seed} failed: ${failure?.kind}: ${failure?.message}`);
    console.log(`faults injected:\n  ${result.faultLog.join('\n  ') || '(none)'}`);
    const tracePath = writeTrace({ options, seed, runOptions });
    if (tracePath !== null) console.log(`trace: ${tracePath}`);
    console.log(`replay: ${replayCommand(options, seed)}   (add --trace to print every event)\n`);
    if (!options.keepGoing) break;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `\n${passed + failed} seeds: ${passed} passed, ${failed} failed, ${linUnknown} with unknown linearizability verdicts ` +
      `(nodes ${options.nodes}, faults ${options.faultsText}${options.storage === 'memory' ? '' : `, storage ${options.storage}`}) in ${seconds}s`,
  );
  return failed === 0 ? 0 : 1;
}

/** Replay the failing seed keeping its trace (the run is deterministic) and save it. */
function writeTrace(options: {
  options: CliOptions;
  seed: number;
  runOptions: Parameters<typeof runSeed>[0];
}): string | null {
  try {
    const lines = options.options.trace
      ? null
      : runSeed({ ...options.runOptions, keepTrace: true }).traceLines;
    if (lines === null) return null;
    mkdirSync(options.options.traceDir, { recursive: true });
    const path = join(options.options.traceDir, `seed-${options.seed}-n${options.options.nodes}.trace`);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  } catch (error) {
    console.log(`(could not write the trace: ${error instanceof Error ? error.message : String(error)})`);
    return null;
  }
}

function main(): void {
  let options: CliOptions | null;
  try {
    options = parseCli(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(usage);
    process.exitCode = 2;
    return;
  }
  if (options === null) {
    console.log(usage);
    return;
  }
  process.exitCode = run(options);
}

main();
