import type { Entry } from '@conclave/raft';
import { Packr } from 'msgpackr';
import type { StateMachine } from '../ports.js';

/** A command of the built-in key-value state machine. */
export type KvCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: string };

export type KvResult = { readonly ok: true; readonly index: number };

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeKvCommand(command: KvCommand): Uint8Array {
  return packr.pack(command);
}

/**
 * A tiny key-value state machine for host tests:
 * enough to drive the host end to end. A snapshot is the whole map, versioned.
 */
export class KvStateMachine implements StateMachine<KvResult> {
  private readonly entries = new Map<string, { value: Uint8Array; modifyIndex: number }>();

  get size(): number {
    return this.entries.size;
  }

  get(key: string): { value: Uint8Array; modifyIndex: number } | undefined {
    return this.entries.get(key);
  }

  apply(entry: Entry): KvResult {
    const command = packr.unpack(entry.data) as KvCommand;
    if (command.op === 'put')
      this.entries.set(command.key, { value: command.value, modifyIndex: entry.index });
    else this.entries.delete(command.key);
    return { ok: true, index: entry.index };
  }

  snapshot(): Uint8Array {
    return packr.pack({ version: 1, entries: [...this.entries] });
  }

  restore(data: Uint8Array): void {
    const decoded = packr.unpack(data) as {
      version: number;
      entries: [string, { value: Uint8Array; modifyIndex: number }][];
    };
    if (decoded.version !== 1) throw new Error(`unknown KV snapshot version ${decoded.version}`);
    this.entries.clear();
    for (const [key, item] of decoded.entries)
      this.entries.set(key, { value: new Uint8Array(item.value), modifyIndex: item.modifyIndex });
  }
}
