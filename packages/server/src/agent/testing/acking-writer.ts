/**
 * A client workload for failover tests: loops writing distinct keys through one npm consul
 * client, recording for every write when it started and ended and how it ended. Only a 200
 * answering `true` counts as acknowledged; a 5xx, a timeout or a reset leaves the outcome
 * open (the write may or may not have been applied), and the key is never written again,
 * so an open outcome cannot be mistaken for an acknowledged one.
 */
import { type ConsulClient, httpStatusOf } from './consul-cluster.js';

export type WriteOutcome =
  /** 200 with `true`: the write must survive anything a majority survives. */
  | 'acked'
  /** A 5xx: not applied (502/503), or unknown (504). */
  | 'failed'
  /** No HTTP answer: client timeout, reset or refused connection. Unknown. */
  | 'unanswered'
  /** A 4xx, or a 200 with something other than true: a plain set never gets these. */
  | 'refused';

export interface WriteRecord {
  readonly key: string;
  readonly value: string;
  readonly startedMs: number;
  readonly endedMs: number;
  readonly outcome: WriteOutcome;
  readonly status: number | null;
  readonly detail: string;
}

export class AckingWriter {
  readonly records: WriteRecord[] = [];
  private inFlight = 0;
  private sequence = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly options: {
      client: ConsulClient;
      keyOf: (sequence: number) => string;
      /** The loops stop by themselves after this many writes, however the test goes. */
      writesMax: number;
      /** Pause after a failed write, so loops do not spin while a group has no leader (ms). */
      pauseAfterFailureMs: number;
    },
  ) {}

  /** Writes issued and not yet answered. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  get ackedCount(): number {
    return this.records.filter((r) => r.outcome === 'acked').length;
  }

  /** Every acknowledged write, key to value. */
  acked(): Map<string, string> {
    return new Map(this.records.filter((r) => r.outcome === 'acked').map((r) => [r.key, r.value]));
  }

  start(concurrency: number): void {
    this.stopping = false;
    this.loops = Array.from({ length: concurrency }, async () => {
      while (!this.stopping && this.sequence < this.options.writesMax) {
        const record = await this.writeOnce(this.sequence++);
        if (record.outcome !== 'acked') await pause(this.options.pauseAfterFailureMs);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async writeOnce(sequence: number): Promise<WriteRecord> {
    const key = this.options.keyOf(sequence);
    const value = `value-${sequence}-of-${key}`;
    const startedMs = Date.now();
    this.inFlight++;
    let ending: Pick<WriteRecord, 'outcome' | 'status' | 'detail'>;
    try {
      const answer = await this.options.client.kv.set({ key, value });
      ending =
        answer === true
          ? { outcome: 'acked', status: 200, detail: '' }
          : { outcome: 'refused', status: 200, detail: `answered ${String(answer)}` };
    } catch (error) {
      const status = httpStatusOf(error);
      const detail = error instanceof Error ? error.message : String(error);
      const outcome = status === null ? 'unanswered' : status >= 500 ? 'failed' : 'refused';
      ending = { outcome, status, detail };
    } finally {
      this.inFlight--;
    }
    const record: WriteRecord = { key, value, startedMs, endedMs: Date.now(), ...ending };
    this.records.push(record);
    return record;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
