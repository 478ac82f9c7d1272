import type { Message, NodeId } from '@conclave/raft';

/** One Raft message and the group it belongs to; a frame carries a batch of them. */
export interface Envelope {
  /** The Raft group, a non-negative safe integer chosen by the multi-Raft host. */
  readonly groupId: number;
  readonly message: Message;
}

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Finds a peer's address at dial time, so an address change applies on the next reconnect. */
export type PeerResolver = (nodeId: NodeId) => PeerAddress | undefined;

/** What a handshake told this node about a peer: its id and where it serves. */
export interface PeerIdentity {
  readonly nodeId: NodeId;
  /** Where it accepts Raft connections, if it said. */
  readonly raft: PeerAddress | null;
  /** Its HTTP API, if it said. */
  readonly http: PeerAddress | null;
}

/** The addresses this node announces in its handshakes. */
export interface LocalAddresses {
  readonly raft: PeerAddress | null;
  readonly http: PeerAddress | null;
}
