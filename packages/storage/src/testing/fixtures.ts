import { createPrng, type Entry, type HardState, type Snapshot, type SnapshotMetadata } from '@conclave/raft';
import type { GroupLog } from '../group-log.js';
import type { StorageLimits } from '../limits.js';
import { SimDisk } from '../sim-disk.js';
import { Wal } from '../wal/wal.js';

export const walDir = '/data/wal';

export function entry(index: number, term: number, dataBytes = 8): Entry {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: 0, data };
}

export function entries(options: { from: number; count: number; term: number; dataBytes?: number }): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < options.count; i++)
    out.push(entry(options.from + i, options.term, options.dataBytes ?? 8));
  return out;
}

export function hs(term: number, commit: number, vote: string | null = 'n1'): HardState {
  return { term, vote, commit };
}

export function snapshot(options: {
  index: number;
  term: number;
  voters?: string[];
  dataBytes?: number;
}): Snapshot {
  const metadata: SnapshotMetadata = {
    index: options.index,
    term: options.term,
    confState: { voters: options.voters ?? ['n1', 'n2', 'n3'], learners: [] },
  };
  const data = new Uint8Array(options.dataBytes ?? 16);
  for (let i = 0; i < data.length; i++) data[i] = (options.index + i) & 0xff;
  return { metadata, data };
}

export function simDisk(seed = 1): SimDisk {
  const disk = new SimDisk({ random: createPrng(seed) });
  disk.mkdir('/data');
  return disk;
}

export function openWal(disk: SimDisk, limits: Partial<StorageLimits> = {}): Wal {
  return Wal.open({ disk, dir: walDir, limits });
}

/** A group's durable state in plain data, for comparing a recovered WAL with a model. */
export interface GroupSummary {
  hardState: HardState;
  snapshot: SnapshotMetadata;
  compactedThrough: { index: number; term: number };
  entries: { index: number; term: number; data: number[] }[];
}

export function summarize(log: GroupLog): GroupSummary {
  return {
    hardState: log.hardState(),
    snapshot: log.snapshotMetadata(),
    compactedThrough: log.compactedThrough(),
    entries: log.allEntries().map((e) => ({ index: e.index, term: e.term, data: [...e.data] })),
  };
}

export function summarizeWal(wal: Wal): Map<number, GroupSummary> {
  const out = new Map<number, GroupSummary>();
  for (const id of wal.groupIds()) out.set(id, summarize(wal.group(id)));
  return out;
}
