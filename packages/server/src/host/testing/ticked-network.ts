/**
 * A network of in-process hosts whose deliveries the test drives, in virtual ticks: nothing
 * is delivered until deliverDue() is called, so a test decides exactly what each host has
 * seen and stays deterministic (no microtasks, no timers). Snapshot chunks (`snap`
 * messages) to a chosen server can be held for a number of ticks while every other message
 * flows at once: a slow snapshot transfer beside a live replication stream.
 */
import type { NodeId } from '@conclave/raft';
import type { Envelope, PeerTransport } from '../ports.js';

interface InFlight {
  readonly to: NodeId;
  readonly from: NodeId;
  readonly envelopes: readonly Envelope[];
  readonly deliverAtTick: number;
}

/** Something sent, as the test may want to observe it (before any holding or dropping). */
export interface SentEnvelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly envelope: Envelope;
  readonly tick: number;
}

export class TickedNetwork {
  private readonly receivers = new Map<NodeId, (envelopes: readonly Envelope[]) => void>();
  private readonly down = new Set<NodeId>();
  /** Per destination: ticks each snapshot chunk sent to it spends on the wire. */
  private readonly snapshotChunkDelayTicks = new Map<NodeId, number>();
  /** In send order; deliverDue() keeps that order among what is due. */
  private inFlight: InFlight[] = [];
  private nowTick = 0;
  /** Called for every envelope sent, even one that is then dropped. */
  onSend: ((sent: SentEnvelope) => void) | null = null;

  get tick(): number {
    return this.nowTick;
  }

  register(id: NodeId, receive: (envelopes: readonly Envelope[]) => void): void {
    this.receivers.set(id, receive);
  }

  transportFor(from: NodeId): PeerTransport {
    return {
      send: (to, envelopes) => {
        for (const envelope of envelopes) this.onSend?.({ from, to, envelope, tick: this.nowTick });
        if (this.down.has(from) || this.down.has(to)) return;
        const delay = this.snapshotChunkDelayTicks.get(to) ?? 0;
        const held = delay > 0 ? envelopes.filter((e) => e.message.type === 'snap') : [];
        const now = held.length > 0 ? envelopes.filter((e) => e.message.type !== 'snap') : envelopes;
        if (now.length > 0) this.inFlight.push({ to, from, envelopes: now, deliverAtTick: this.nowTick });
        if (held.length > 0)
          this.inFlight.push({ to, from, envelopes: held, deliverAtTick: this.nowTick + delay });
      },
    };
  }

  /** Snapshot chunks sent to `to` from now on arrive `ticks` ticks later (0: at once). */
  holdSnapshotChunks(options: { to: NodeId; ticks: number }): void {
    this.snapshotChunkDelayTicks.set(options.to, options.ticks);
  }

  /** A down server neither sends nor receives; what was in flight to or from it is lost. */
  setDown(id: NodeId, down: boolean): void {
    if (down) this.down.add(id);
    else this.down.delete(id);
  }

  advanceTick(): void {
    this.nowTick++;
  }

  /**
   * Deliver everything due by now (only what was in flight at the call: replies come from
   * the hosts' next turns). Returns how many batches were delivered.
   */
  deliverDue(): number {
    const due = this.inFlight.filter((f) => f.deliverAtTick <= this.nowTick);
    if (due.length === 0) return 0;
    this.inFlight = this.inFlight.filter((f) => f.deliverAtTick > this.nowTick);
    let delivered = 0;
    for (const flight of due) {
      if (this.down.has(flight.to) || this.down.has(flight.from)) continue;
      const receive = this.receivers.get(flight.to);
      if (receive === undefined) continue;
      receive(flight.envelopes);
      delivered++;
    }
    return delivered;
  }
}
