import { parseArgs } from 'node:util';
import type { StorageMode } from './cluster.js';
import { allWalFaultKinds, type FaultKind, parseFaultKinds } from './faults.js';
import { runDefaults } from './run.js';

/** The simulator CLI's arguments, parsed and validated (kept apart from cli.ts, which runs on import). */

export const usage = `usage: node packages/sim/dist/cli.js [options]
  --seeds A-B | A,B,C   seeds to run (default 1-100)
  --seed N              run one seed (same as --seeds N)
  --nodes 3|5           cluster size (default 5)
  --faults KINDS        all | none | comma list of ${allWalFaultKinds.join(', ')} (default all;
                        fsync and bitflip need --storage wal, and all includes them only then)
  --storage MODE        memory (default): the in-memory disk model | wal: the server's real WAL
                        and snapshot store over a faulty simulated disk
  --fault-ms MS         length of the faults phase in virtual ms (default ${runDefaults.faultPhaseMs})
  --liveness-ms MS      bound on recovery after healing (default ${runDefaults.livenessBoundMs})
  --trace               print the trace of each run (use with --seed)
  --trace-dir DIR       on failure, write the failing run's trace to DIR (default .sim-traces)
  --check-determinism   run every seed twice and fail if the trace hashes differ
  --keep-going          do not stop at the first failure
  --help`;

export interface CliOptions {
  readonly seeds: readonly number[];
  readonly nodes: number;
  readonly faults: readonly FaultKind[];
  readonly faultsText: string;
  readonly storage: StorageMode;
  readonly faultPhaseMs: number;
  readonly livenessBoundMs: number;
  readonly trace: boolean;
  readonly traceDir: string;
  readonly checkDeterminism: boolean;
  readonly keepGoing: boolean;
}

export function parseCli(argv: readonly string[]): CliOptions | null {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string', default: '5' },
      faults: { type: 'string', default: 'all' },
      storage: { type: 'string', default: 'memory' },
      'fault-ms': { type: 'string', default: String(runDefaults.faultPhaseMs) },
      'liveness-ms': { type: 'string', default: String(runDefaults.livenessBoundMs) },
      trace: { type: 'boolean', default: false },
      'trace-dir': { type: 'string', default: '.sim-traces' },
      'check-determinism': { type: 'boolean', default: false },
      'keep-going': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const nodes = positiveInt('--nodes', values.nodes);
  if (nodes !== 3 && nodes !== 5) throw new RangeError('--nodes must be 3 or 5');
  const storage = values.storage;
  if (storage !== 'memory' && storage !== 'wal') throw new RangeError('--storage must be memory or wal');
  return {
    seeds: parseSeeds(values.seed ?? values.seeds ?? '1-100'),
    nodes,
    faults: parseFaultKinds(values.faults, { storage }),
    faultsText: values.faults,
    storage,
    faultPhaseMs: positiveInt('--fault-ms', values['fault-ms']),
    livenessBoundMs: positiveInt('--liveness-ms', values['liveness-ms']),
    trace: values.trace,
    traceDir: values['trace-dir'],
    checkDeterminism: values['check-determinism'],
    keepGoing: values['keep-going'],
  };
}

/** "1-1000", "7", or "3,9,12" (ranges allowed inside lists). */
export function parseSeeds(text: string): number[] {
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const range = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
    if (range === null) throw new RangeError(`bad seed list '${text}'`);
    const lo = Number(range[1]);
    const hi = range[2] === undefined ? lo : Number(range[2]);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo)
      throw new RangeError(`bad seed range '${part}'`);
    for (let seed = lo; seed <= hi; seed++) seeds.push(seed);
  }
  return seeds;
}

function positiveInt(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new RangeError(`${name} must be a positive integer, got '${text}'`);
  return value;
}
