import { isValidNodeId, type NodeId } from '@conclave/raft';
import { type Disk, joinPath, NodeDisk, writeFileAtomic } from '@conclave/storage';
import type { Logger } from 'pino';
import type { Address } from './config.js';

/** Where one server listens. Either may be unknown (an older peer announces neither). */
export interface MemberAddresses {
  readonly raft: Address | null;
  readonly http: Address | null;
}

/** What the rest of the server reads: where another server listens, or null if unknown. */
export interface AddressBookView {
  httpAddress(nodeId: string): Address | null;
  raftAddress(nodeId: string): Address | null;
}

export const addressBookLimits = {
  /** Servers remembered; a cluster has 3-7, plus the ones that came and went. */
  entriesMax: 1024,
  /** Larger files are refused on load (entriesMax entries fit many times over). */
  fileBytesMax: 1024 * 1024,
  hostLengthMax: 253,
} as const;

export const addressBookFileName = 'address-book.json';

interface StoredFile {
  readonly formatVersion: 1;
  readonly members: Record<string, { raft: Address | null; http: Address | null }>;
}

/**
 * Every server this one knows of: node id -> Raft and HTTP addresses. Filled from the
 * configuration, from handshakes (each hello and welcome announces the sender's addresses)
 * and from the context of applied membership changes; read by the transport to dial peers
 * and by request forwarding to reach a leader's HTTP API. Persisted in the data dir,
 * atomically, whenever it changes, so a restarted server can dial a member it heard of
 * only once (the log entry that named it may be compacted away since).
 */
export class AddressBook implements AddressBookView {
  private readonly members = new Map<NodeId, MemberAddresses>();
  private warnedFull = false;

  private constructor(
    private readonly options: { disk: Disk; dir: string; logger: Logger; entriesMax: number },
  ) {}

  /** Load `dir/address-book.json` if there is one. Unreadable entries are skipped and logged. */
  static open(options: { dir: string; logger: Logger; disk?: Disk; entriesMax?: number }): AddressBook {
    const book = new AddressBook({
      disk: options.disk ?? new NodeDisk(),
      dir: options.dir,
      logger: options.logger,
      entriesMax: options.entriesMax ?? addressBookLimits.entriesMax,
    });
    book.load();
    return book;
  }

  get size(): number {
    return this.members.size;
  }

  get(nodeId: NodeId): MemberAddresses | null {
    return this.members.get(nodeId) ?? null;
  }

  raftAddress(nodeId: NodeId): Address | null {
    return this.members.get(nodeId)?.raft ?? null;
  }

  httpAddress(nodeId: NodeId): Address | null {
    return this.members.get(nodeId)?.http ?? null;
  }

  /** Every entry, by node id. */
  entries(): [NodeId, MemberAddresses][] {
    return [...this.members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Record what was learned of `nodeId`; a null or absent address keeps what is known. The
   * newest word wins: a server that restarted elsewhere announces its new address itself.
   * Persists before returning when anything changed; returns whether it did.
   */
  learn(nodeId: NodeId, update: { raft?: Address | null; http?: Address | null }): boolean {
    if (!isValidNodeId(nodeId)) throw new TypeError(`invalid node id ${JSON.stringify(nodeId)}`);
    for (const address of [update.raft, update.http]) {
      if (address !== undefined && address !== null && !isValidAddress(address)) {
        throw new TypeError(`invalid address ${JSON.stringify(address)} for node ${nodeId}`);
      }
    }
    const known = this.members.get(nodeId);
    const next: MemberAddresses = {
      raft: copy(update.raft ?? known?.raft ?? null),
      http: copy(update.http ?? known?.http ?? null),
    };
    if (next.raft === null && next.http === null) return false;
    if (known !== undefined && sameAddress(known.raft, next.raft) && sameAddress(known.http, next.http)) {
      return false;
    }
    if (known === undefined && this.members.size >= this.options.entriesMax) {
      if (!this.warnedFull) {
        this.warnedFull = true;
        this.options.logger.warn(
          { nodeId, entriesMax: this.options.entriesMax },
          `the address book is full (${this.options.entriesMax} servers); not recording node ${nodeId}`,
        );
      }
      return false;
    }
    this.members.set(nodeId, next);
    this.save();
    this.options.logger.info(
      { nodeId, raft: next.raft, http: next.http },
      `learned the addresses of node ${nodeId}`,
    );
    return true;
  }

  private save(): void {
    const members: StoredFile['members'] = {};
    for (const [id, addresses] of this.entries())
      members[id] = { raft: addresses.raft, http: addresses.http };
    const file: StoredFile = { formatVersion: 1, members };
    writeFileAtomic({
      disk: this.options.disk,
      dir: this.options.dir,
      name: addressBookFileName,
      data: new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`),
    });
  }

  private load(): void {
    const { disk, dir, logger } = this.options;
    const path = joinPath(dir, addressBookFileName);
    if (!disk.exists(path)) return;
    const skip = (why: string): void => {
      logger.warn({ path }, `ignoring ${path}: ${why}; addresses are learned again from peers`);
    };
    let parsed: unknown;
    try {
      const file = disk.open(path, { mode: 'existing' });
      let bytes: Uint8Array;
      try {
        // Checked before reading, so a huge file costs nothing.
        if (file.size() > addressBookLimits.fileBytesMax) {
          skip(`larger than ${addressBookLimits.fileBytesMax} bytes`);
          return;
        }
        bytes = file.read({ offset: 0, length: file.size() });
      } finally {
        file.close();
      }
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch (error) {
      skip(error instanceof Error ? error.message : String(error));
      return;
    }
    if (!isRecord(parsed) || parsed.formatVersion !== 1 || !isRecord(parsed.members)) {
      skip('not an address book of format version 1');
      return;
    }
    for (const [id, value] of Object.entries(parsed.members)) {
      const raft = isRecord(value) ? parseStoredAddress(value.raft) : undefined;
      const http = isRecord(value) ? parseStoredAddress(value.http) : undefined;
      if (
        !isValidNodeId(id) ||
        raft === undefined ||
        http === undefined ||
        (raft === null && http === null)
      ) {
        logger.warn(
          { path, nodeId: id },
          `ignoring the malformed entry for ${JSON.stringify(id)} in ${path}`,
        );
        continue;
      }
      if (this.members.size >= this.options.entriesMax) break;
      this.members.set(id, { raft, http });
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isValidAddress(address: Address): boolean {
  return (
    typeof address.host === 'string' &&
    address.host.length > 0 &&
    address.host.length <= addressBookLimits.hostLengthMax &&
    Number.isInteger(address.port) &&
    address.port > 0 &&
    address.port <= 65535
  );
}

/** An address, null, or undefined when the value is neither. */
function parseStoredAddress(value: unknown): Address | null | undefined {
  if (value === null) return null;
  if (!isRecord(value) || typeof value.host !== 'string' || typeof value.port !== 'number') return undefined;
  const address = { host: value.host, port: value.port };
  return isValidAddress(address) ? address : undefined;
}

function copy(address: Address | null): Address | null {
  return address === null ? null : { host: address.host, port: address.port };
}

function sameAddress(a: Address | null, b: Address | null): boolean {
  return a === b || (a !== null && b !== null && a.host === b.host && a.port === b.port);
}
