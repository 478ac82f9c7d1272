/**
 * `npm run bench [-- core|wal|cluster|http|snapshot|primitives ...] [--runs N] [--quick]
 * [--vs-etcd] [--size-mb N] [--value-kb N]`, and for `primitives`: [--duration-ms N]
 * [--warmup-ms N] [--in-flight 1,64] [--map-in-flight N] [--contenders N] [--clients N]
 * [--no-etcd]. Runs the benchmarks and prints one JSON object per case on stdout, then a
 * human-readable table on stderr. `http`, `snapshot` and `primitives` are not in the
 * default set: they start real clusters (and may install etcd), so they run only when named.
 */
import { runClusterBench } from './cluster-bench.js';
import { type CoreBenchResult, runCoreBench } from './core-bench.js';
import { httpBenchTiming, runHttpBench } from './http-bench.js';
import { primitivesDefaults, runPrimitivesBench } from './primitives-bench.js';
import { runSnapshotBench } from './snapshot-bench.js';
import { formatWalBenchLine, runWalBench } from './wal-bench.js';

interface Options {
  suites: string[];
  runs: number;
  quick: boolean;
  vsEtcd: boolean;
  /** The snapshot suite's state and value sizes. */
  sizeMb: number;
  valueKb: number;
  /** Whether --runs was given (the primitives suite has its own default). */
  runsGiven: boolean;
  primitives: {
    durationMs: number | null;
    warmupMs: number | null;
    counterInFlights: number[];
    mapInFlight: number;
    contenders: number;
    clients: number;
    etcd: boolean;
  };
}

const primitivesFlags = [
  '--duration-ms',
  '--warmup-ms',
  '--in-flight',
  '--map-in-flight',
  '--contenders',
  '--clients',
  '--no-etcd',
];

function parseArgs(argv: readonly string[]): Options {
  const options: Options = {
    suites: [],
    runs: 5,
    quick: false,
    vsEtcd: false,
    sizeMb: 1024,
    valueKb: 64,
    runsGiven: false,
    primitives: {
      durationMs: null,
      warmupMs: null,
      counterInFlights: [...primitivesDefaults.counterInFlights],
      mapInFlight: primitivesDefaults.mapInFlight,
      contenders: primitivesDefaults.contenders,
      clients: primitivesDefaults.clients,
      etcd: true,
    },
  };
  const primitiveFlagsSeen: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg !== undefined && primitivesFlags.includes(arg)) primitiveFlagsSeen.push(arg);
    if (arg === '--runs') {
      options.runs = Number(argv[++i]);
      options.runsGiven = true;
    } else if (arg === '--duration-ms') options.primitives.durationMs = Number(argv[++i]);
    else if (arg === '--warmup-ms') options.primitives.warmupMs = Number(argv[++i]);
    else if (arg === '--in-flight')
      options.primitives.counterInFlights = (argv[++i] ?? '').split(',').map(Number);
    else if (arg === '--map-in-flight') options.primitives.mapInFlight = Number(argv[++i]);
    else if (arg === '--contenders') options.primitives.contenders = Number(argv[++i]);
    else if (arg === '--clients') options.primitives.clients = Number(argv[++i]);
    else if (arg === '--no-etcd') options.primitives.etcd = false;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--vs-etcd') options.vsEtcd = true;
    else if (arg === '--size-mb') options.sizeMb = Number(argv[++i]);
    else if (arg === '--value-kb') options.valueKb = Number(argv[++i]);
    else if (arg !== undefined && !arg.startsWith('-')) options.suites.push(arg);
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1 || options.runs > 100) {
    throw new Error('--runs must be an integer in [1, 100]');
  }
  if (options.suites.length === 0) options.suites = ['core', 'wal', 'cluster'];
  if (options.vsEtcd && !options.suites.includes('http')) throw new Error('--vs-etcd needs the http suite');
  if (primitiveFlagsSeen.length > 0 && !options.suites.includes('primitives')) {
    throw new Error(`${primitiveFlagsSeen.join(', ')}: only for the primitives suite`);
  }
  return options;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? 0) + hi) / 2;
}

function runCore(options: Options): void {
  const entrySizes = [16, 256];
  const batches = [1, 16, 256, 1024];
  const rows: string[] = [];
  for (const entryBytes of entrySizes) {
    for (const batchEntries of batches) {
      const totalEntries = options.quick ? 20_000 : batchEntries === 1 ? 100_000 : 400_000;
      // One discarded run lets the JIT settle, so the medians describe steady state.
      runCoreBench({ entryBytes, batchEntries, totalEntries: Math.min(totalEntries, 50_000) });
      const results: CoreBenchResult[] = [];
      for (let run = 0; run < options.runs; run++)
        results.push(runCoreBench({ entryBytes, batchEntries, totalEntries }));
      const eps = median(results.map((r) => r.entriesPerSecond));
      const cpuNs = median(results.map((r) => r.cpuNsPerEntry));
      const line = {
        bench: 'core',
        nodes: 3,
        entryBytes,
        batchEntries,
        totalEntries,
        runs: options.runs,
        medianEntriesPerSecond: Math.round(eps),
        medianCpuNsPerEntry: Math.round(cpuNs),
        minEntriesPerSecond: Math.round(Math.min(...results.map((r) => r.entriesPerSecond))),
        maxEntriesPerSecond: Math.round(Math.max(...results.map((r) => r.entriesPerSecond))),
      };
      console.log(JSON.stringify(line));
      rows.push(
        `${String(entryBytes).padStart(6)} B  batch ${String(batchEntries).padStart(5)}  ${String(line.medianEntriesPerSecond).padStart(10)} entries/s  ${String(line.medianCpuNsPerEntry).padStart(7)} ns CPU/entry`,
      );
    }
  }
  console.error(['', 'core: 3 nodes in one process, no I/O (median of runs)', ...rows].join('\n'));
}

async function runCluster(options: Options): Promise<void> {
  const results = await runClusterBench({ durationMs: options.quick ? 1000 : 3000 });
  const rows = results.map((r) => {
    console.log(JSON.stringify(r));
    return `${String(r.groups).padStart(2)} group(s)  ${String(r.inFlight).padStart(4)} in flight  ${String(r.writesPerSecond).padStart(7)} writes/s  p50 ${r.p50LatencyMs} ms  p99 ${r.p99LatencyMs} ms  loop lag p99 ${r.loopLagP99Ms} ms (heartbeat ${r.heartbeatIntervalMs} ms)`;
  });
  console.error(
    [
      '',
      'cluster: 3 servers on loopback, leader driven in-process, fdatasync on each write batch',
      ...rows,
    ].join('\n'),
  );
}

function runWal(options: Options): void {
  for (const result of runWalBench({ durationMs: options.quick ? 500 : 3000 }))
    console.log(formatWalBenchLine(result));
}

const options = parseArgs(process.argv.slice(2));
for (const suite of options.suites) {
  if (suite === 'core') runCore(options);
  else if (suite === 'wal') runWal(options);
  else if (suite === 'cluster') await runCluster(options);
  else if (suite === 'http')
    await runHttpBench({
      runs: options.runs,
      timing: options.quick ? httpBenchTiming.quick : httpBenchTiming.full,
      vsEtcd: options.vsEtcd,
      emit: (line) => console.log(JSON.stringify(line)),
      log: (line) => console.error(line),
    });
  else if (suite === 'snapshot')
    await runSnapshotBench({
      sizeMb: options.sizeMb,
      valueKb: options.valueKb,
      emit: (line) => console.log(JSON.stringify(line)),
      log: (line) => console.error(line),
    });
  else if (suite === 'primitives') {
    const p = options.primitives;
    await runPrimitivesBench({
      runs: options.runsGiven ? options.runs : options.quick ? 1 : primitivesDefaults.runs,
      durationMs: p.durationMs ?? (options.quick ? 1000 : primitivesDefaults.durationMs),
      warmupMs: p.warmupMs ?? (options.quick ? 200 : primitivesDefaults.warmupMs),
      counterInFlights: p.counterInFlights,
      mapInFlight: p.mapInFlight,
      contenders: p.contenders,
      clients: p.clients,
      mapKeys: primitivesDefaults.mapKeys,
      vsEtcd: p.etcd,
      emit: (line) => console.log(JSON.stringify(line)),
      log: (line) => console.error(line),
    });
  } else
    throw new Error(`unknown bench suite ${suite}; known: core, wal, cluster, http, snapshot, primitives`);
}
