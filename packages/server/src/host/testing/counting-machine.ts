import type { Entry } from '@conclave/raft';
import type { StateMachine } from '../ports.js';

/** Counts applied entries; its snapshot is that count, taken at once. */
export class CountingMachine implements StateMachine<number> {
  applied = 0;

  apply(_entry: Entry): number {
    return ++this.applied;
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.applied));
  }

  restore(data: Uint8Array): void {
    this.applied = Number(new TextDecoder().decode(data));
  }
}
