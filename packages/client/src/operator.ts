import type { MemberStatus, RemovedServer } from '@conclave/protocol';
import { type CallOptions, signalOf } from './call.js';
import { badResponse, errorFromAnswer } from './errors.js';
import type { HttpAnswer, HttpCall, HttpTransport } from './http.js';

/**
 * The operator endpoints (`/v1/operator/cluster`, `/groups/<id>`, `/members`, remove-peer,
 * transfer-leader). Answers are checked for the fields callers read; anything else passes
 * through as the server sent it.
 */

/** One member of a group, as the server reports it (the protocol's shape). */
export type OperatorMember = MemberStatus;

export interface OperatorGroup {
  readonly groupId: number;
  readonly answeredBy: string;
  readonly state: string;
  readonly term: number;
  readonly leader: string | null;
  readonly followers: readonly string[];
  readonly learners: readonly string[];
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly logEntries: number;
  readonly lastContactMs: number;
  readonly snapshotIndex: number;
  readonly snapshotTime: string | null;
  readonly members: readonly OperatorMember[];
}

export interface OperatorCluster {
  readonly nodeId: string;
  /** Servers removed from groups and not added back (absent from older servers). */
  readonly removedServers?: readonly RemovedServer[];
  readonly groups: readonly {
    readonly groupId: number;
    readonly leaderId: string | null;
    readonly followers: readonly string[];
    readonly learners: readonly string[];
    readonly term: number;
  }[];
  readonly servers: readonly {
    readonly id: string;
    readonly address: string;
    readonly voterOf: number;
    readonly learnerOf: number;
    readonly leaderOf: number;
  }[];
}

export interface OperatorServer {
  readonly id: string;
  readonly address: string;
  readonly groups: readonly OperatorGroup[];
  readonly error: string | null;
}

export type OperatorOutcome =
  | ({ readonly groupId: number; readonly ok: true } & Readonly<Record<string, unknown>>)
  | { readonly groupId: number; readonly ok: false; readonly code: string; readonly message: string };

type Json = Readonly<Record<string, unknown>>;

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badResponse(`${what} is not a JSON object`);
  }
  return value as Json;
}

function list(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) throw badResponse(`${what} is not a JSON array`);
  return value;
}

/** Check that each named field has the JSON type given; the value is then trusted as `T`. */
function shaped<T>(value: unknown, what: string, fields: Readonly<Record<string, string>>): T {
  const o = object(value, what);
  for (const [name, type] of Object.entries(fields)) {
    const field = o[name];
    const actual = Array.isArray(field) ? 'array' : field === null ? 'null' : typeof field;
    if (!type.split('|').includes(actual)) throw badResponse(`${what}.${name} is not ${type}`);
  }
  return o as T;
}

const groupFields = {
  groupId: 'number',
  answeredBy: 'string',
  state: 'string',
  term: 'number',
  leader: 'string|null',
  commitIndex: 'number',
  lastIndex: 'number',
  logEntries: 'number',
  snapshotIndex: 'number',
  snapshotTime: 'string|null',
  members: 'array',
};
const memberFields = {
  id: 'string',
  voter: 'boolean',
  matchIndex: 'number|null',
  trailingEntries: 'number|null',
};

function group(value: unknown, what: string): OperatorGroup {
  const g = shaped<OperatorGroup>(value, what, groupFields);
  g.members.forEach((m, i) => void shaped(m, `${what}.members[${i}]`, memberFields));
  return g;
}

function parse(answer: HttpAnswer): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw badResponse('the answer is not JSON', answer.status);
  }
}

/** Statuses a command answers with per-group outcomes when some group failed. */
const outcomeStatuses = [400, 404, 409, 429, 500, 502, 503, 504];

export class OperatorClient {
  /** @internal Made by ConclaveClient. */
  constructor(private readonly http: Pick<HttpTransport, 'send'>) {}

  async cluster(options: CallOptions = {}): Promise<OperatorCluster> {
    const answer = await this.http.send({
      method: 'GET',
      path: '/v1/operator/cluster',
      ...signalOf(options),
    });
    const c = shaped<OperatorCluster>(parse(answer), 'cluster', {
      nodeId: 'string',
      groups: 'array',
      servers: 'array',
    });
    c.groups.forEach(
      (g, i) =>
        void shaped(g, `cluster.groups[${i}]`, {
          groupId: 'number',
          leaderId: 'string|null',
          term: 'number',
        }),
    );
    c.servers.forEach((s, i) => void shaped(s, `cluster.servers[${i}]`, { id: 'string', address: 'string' }));
    return c;
  }

  async group(options: { groupId: number; stale?: boolean } & CallOptions): Promise<OperatorGroup> {
    const answer = await this.http.send({
      method: 'GET',
      path: `/v1/operator/groups/${options.groupId}`,
      query: { stale: options.stale === true ? true : undefined },
      ...signalOf(options),
    });
    return group(parse(answer), 'group');
  }

  async members(options: CallOptions = {}): Promise<OperatorServer[]> {
    const answer = await this.http.send({
      method: 'GET',
      path: '/v1/operator/members',
      ...signalOf(options),
    });
    const servers = list(object(parse(answer), 'members').servers, 'members.servers');
    return servers.map((value, i) => {
      const s = shaped<OperatorServer>(value, `members.servers[${i}]`, {
        id: 'string',
        address: 'string',
        groups: 'array',
        error: 'string|null',
      });
      s.groups.forEach((g, j) => void group(g, `members.servers[${i}].groups[${j}]`));
      return s;
    });
  }

  /** Remove a server from one group, or from all it belongs to: each group's outcome. */
  removePeer(options: { id: string; groupId?: number } & CallOptions): Promise<OperatorOutcome[]> {
    return this.outcomes({
      method: 'DELETE',
      path: '/v1/operator/raft/peer',
      query: { id: options.id, group: options.groupId },
      ...signalOf(options),
    });
  }

  /** Move leadership of one group, or of every group `to` is a voter of, to `to`. */
  transferLeader(options: { to: string; groupId?: number } & CallOptions): Promise<OperatorOutcome[]> {
    return this.outcomes({
      method: 'POST',
      path: '/v1/operator/raft/transfer-leader',
      query: { to: options.to, group: options.groupId },
      ...signalOf(options),
    });
  }

  private async outcomes(call: HttpCall): Promise<OperatorOutcome[]> {
    const answer = await this.http.send({ ...call, accept: outcomeStatuses });
    const body = parse(answer);
    const groups = typeof body === 'object' && body !== null && 'groups' in body ? body.groups : undefined;
    // A refusal of the whole request carries `{code, message}`, not outcomes.
    if (groups === undefined) {
      if (answer.status >= 200 && answer.status < 300)
        throw badResponse('the answer has no groups', answer.status);
      throw errorFromAnswer(answer);
    }
    return list(groups, 'groups').map((o, i) =>
      shaped<OperatorOutcome>(o, `groups[${i}]`, { groupId: 'number', ok: 'boolean' }),
    );
  }
}
