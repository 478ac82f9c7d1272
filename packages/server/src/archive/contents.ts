import { createHash, type Hash } from 'node:crypto';
import { snapshotPartBytesMax } from '../fsm/snapshot-codec.js';
import { SnapshotPartError, SnapshotPartsReader } from '../fsm/snapshot-parts.js';
import {
  type ArchiveMeta,
  archiveInvalid,
  isFormatOneFile,
  metaBytesMax,
  metaFileName,
  parsePartFileName,
  sha256Hex,
  sumLine,
  sumsBytesMax,
  sumsFileName,
} from './format.js';
import { parseMeta, parseSums, wrongVersion } from './meta.js';
import type { TarEntryHeader } from './tar.js';

/** The rows one part holds, as the FSM's part reader decodes them. */
export type PartRows = ReturnType<SnapshotPartsReader['push']>;

/** One part, verified on its own and in sequence, as `onPart` receives it. */
export interface ArchivePart {
  readonly groupId: number;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly rows: PartRows;
}

/** What the parts of one group added up to, to compare with meta.json at the end. */
interface GroupTally {
  readonly groupId: number;
  readonly reader: SnapshotPartsReader;
  readonly hash: Hash;
  parts: number;
  bytes: number;
}

interface GroupSummary {
  readonly groupId: number;
  readonly parts: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly keys: number;
}

/**
 * An archive's files as they stream past, checked in order: the group parts (names, order,
 * sizes, each decoded by the FSM's part reader), then meta.json and SHA256SUMS, which are
 * checked against everything seen once the whole archive has gone by. Holds one part, the
 * small files, and one sum per part (bounded by sumsBytesMax, as SHA256SUMS itself is).
 */
export class ArchiveContents {
  private current: GroupTally | null = null;
  private readonly groups: GroupSummary[] = [];
  private readonly sums = new Map<string, string>();
  private sumsBytes = 0;
  private meta: Buffer | null = null;
  private sumsFile: Buffer | null = null;

  constructor(
    private readonly options: {
      onPart?: ((part: ArchivePart) => Promise<void> | void) | undefined;
      /**
       * The cluster's groups, when known: a part of a group past them is refused at its
       * header, before onPart could stage a group the cluster does not have.
       */
      groupCount?: number | undefined;
    },
  ) {}

  /** Refuses a file before its bytes are read: by name, by place in the order, by size. */
  admit(header: TarEntryHeader): void {
    const { name, size } = header;
    if (this.sumsFile !== null) throw archiveInvalid(`the archive holds ${name} after ${sumsFileName}`);
    if (name === sumsFileName) {
      if (this.meta === null) throw archiveInvalid(`${sumsFileName} comes before ${metaFileName}`);
      checkSize({ name, size, max: sumsBytesMax });
      return;
    }
    if (this.meta !== null) throw archiveInvalid(`the archive holds ${name} after ${metaFileName}`);
    if (name === metaFileName) {
      if (this.current === null) throw archiveInvalid(`${metaFileName} comes before any group's parts`);
      checkSize({ name, size, max: metaBytesMax });
      return;
    }
    if (isFormatOneFile(name)) throw wrongVersion(1);
    const part = parsePartFileName(name);
    if (part === null) throw archiveInvalid(`the archive holds an unexpected file ${name}`);
    const { groupCount } = this.options;
    if (groupCount !== undefined && part.groupId >= groupCount) {
      throw archiveInvalid(
        `the archive holds ${name}, a part of group ${part.groupId}; this cluster has ${groupCount} groups`,
      );
    }
    const due = this.nextDue(part.groupId);
    if (part.groupId !== due.groupId || part.seq !== due.seq) {
      throw archiveInvalid(
        `the archive holds ${name} where group ${due.groupId} part ${due.seq} was due: a part is missing or out of order`,
      );
    }
    checkSize({ name, size, max: snapshotPartBytesMax });
  }

  /** Takes one admitted file; awaits `onPart` for a part, so the reader does not run ahead. */
  async add(file: { name: string; data: Buffer }): Promise<void> {
    const { name, data } = file;
    if (name === metaFileName) {
      this.endGroup();
      this.record({ name, data });
      this.meta = data;
    } else if (name === sumsFileName) {
      this.sumsFile = data;
    } else {
      const part = parsePartFileName(name);
      if (part === null) throw new Error(`archive: ${name} was admitted but is not a part`);
      await this.addPart({ ...part, name, data });
    }
  }

  /** Everything seen against SHA256SUMS and meta.json: the archive's meta once all agree. */
  finish(options: { groupCount?: number }): ArchiveMeta {
    if (this.meta === null) throw archiveInvalid(`the archive has no ${metaFileName}`);
    if (this.sumsFile === null) throw archiveInvalid(`the archive has no ${sumsFileName}`);
    checkSums({ listed: parseSums(this.sumsFile), seen: this.sums });
    const meta = parseMeta(this.meta);
    if (meta.groups.length !== this.groups.length) {
      throw archiveInvalid(
        `${metaFileName} lists ${meta.groups.length} groups; the archive holds parts of ${this.groups.length}`,
      );
    }
    for (const [i, group] of meta.groups.entries()) {
      const seen = this.groups[i];
      if (
        seen === undefined ||
        seen.parts !== group.parts ||
        seen.bytes !== group.bytes ||
        seen.sha256 !== group.sha256 ||
        seen.keys !== group.keys
      ) {
        throw archiveInvalid(
          `group ${group.groupId}'s parts do not match ${metaFileName} (parts, bytes, sha256 or keys)`,
        );
      }
    }
    if (options.groupCount !== undefined && meta.groups.length !== options.groupCount) {
      throw archiveInvalid(
        `the archive holds ${meta.groups.length} groups; this cluster has ${options.groupCount}`,
      );
    }
    return meta;
  }

  private nextDue(groupId: number): { groupId: number; seq: number } {
    const current = this.current;
    if (current === null) return { groupId: 0, seq: 0 };
    if (groupId === current.groupId) return { groupId, seq: current.parts };
    return { groupId: current.groupId + 1, seq: 0 };
  }

  private async addPart(part: { groupId: number; seq: number; name: string; data: Buffer }): Promise<void> {
    if (this.current?.groupId !== part.groupId) {
      this.endGroup();
      this.current = {
        groupId: part.groupId,
        reader: new SnapshotPartsReader({ keepRows: false }),
        hash: createHash('sha256'),
        parts: 0,
        bytes: 0,
      };
    }
    const group = this.current;
    this.record(part);
    group.hash.update(part.data);
    group.parts += 1;
    group.bytes += part.data.length;
    const rows = partCheck(part, () => group.reader.push(part.data));
    await this.options.onPart?.({ groupId: part.groupId, seq: part.seq, data: part.data, rows });
  }

  /** The group's parts are all in: its reader checks nothing is missing. */
  private endGroup(): void {
    const group = this.current;
    if (group === null) return;
    const end = partCheck({ groupId: group.groupId, seq: group.parts }, () => group.reader.finish());
    this.groups.push({
      groupId: group.groupId,
      parts: group.parts,
      bytes: group.bytes,
      sha256: group.hash.digest('hex'),
      keys: end.keys,
    });
  }

  /** A file's sum, to check against SHA256SUMS at the end. */
  private record(file: { name: string; data: Buffer }): void {
    const sha256 = sha256Hex(file.data);
    this.sumsBytes += Buffer.byteLength(sumLine({ sha256, name: file.name }));
    if (this.sumsBytes > sumsBytesMax) {
      throw archiveInvalid(
        `the archive holds more files than ${sumsFileName} can list (${sumsBytesMax} bytes)`,
      );
    }
    this.sums.set(file.name, sha256);
  }
}

/** The FSM's part reader, its refusals turned into the archive's. */
function partCheck<T>(at: { groupId: number; seq: number }, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof SnapshotPartError)) throw error;
    throw archiveInvalid(`group ${at.groupId}'s state is invalid at part ${at.seq}: ${error.message}`);
  }
}

function checkSize(options: { name: string; size: number; max: number }): void {
  if (options.size > options.max) {
    throw archiveInvalid(
      `${options.name} is ${options.size} bytes, over the ${options.max} a reader accepts`,
    );
  }
}

/** Every file seen is listed with its sum; nothing else is listed. */
function checkSums(options: { listed: Map<string, string>; seen: ReadonlyMap<string, string> }): void {
  const { listed } = options;
  for (const [name, sha256] of options.seen) {
    const sum = listed.get(name);
    if (sum === undefined) throw archiveInvalid(`${name} has no sum in ${sumsFileName}`);
    if (sum !== sha256) throw archiveInvalid(`${name} does not match its SHA-256 sum`);
    listed.delete(name);
  }
  const missing = [...listed.keys()];
  if (missing.length > 0) {
    throw archiveInvalid(`${sumsFileName} lists files the archive lacks: ${missing.slice(0, 5).join(', ')}`);
  }
}
