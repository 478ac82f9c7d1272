import { badResponse } from './errors.js';
import { type HttpAnswer, type HttpLimits, HttpTransport } from './http.js';

/**
 * Consul's autopilot endpoints (`/v1/operator/autopilot/configuration`, `/health`,
 * `/state`), with Consul's field names. Answers are checked for the fields callers read;
 * the rest passes through as the server sent it.
 */

export interface AutopilotConfiguration {
  readonly CleanupDeadServers: boolean;
  /** Go duration strings ("200ms"), as Consul's API writes them. */
  readonly LastContactThreshold: string;
  readonly MaxTrailingLogs: number;
  readonly MinQuorum: number;
  readonly ServerStabilizationTime: string;
  readonly DeadServerThreshold: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** The settings a PUT may change; those left out keep their current values. */
export interface AutopilotSettingsUpdate {
  readonly CleanupDeadServers?: boolean;
  /** A Go duration ("200ms", "10s"): the server parses and bounds it. */
  readonly LastContactThreshold?: string;
  readonly MaxTrailingLogs?: number;
  readonly MinQuorum?: number;
  readonly ServerStabilizationTime?: string;
}

export interface AutopilotServerHealth {
  readonly ID: string;
  readonly Address: string;
  readonly Leader: boolean;
  readonly Voter: boolean;
  readonly Healthy: boolean;
  readonly LastContact: string | null;
  /** Null when the server could not be asked (it is down or unreachable). */
  readonly LastTerm: number | null;
  readonly LastIndex: number | null;
  readonly StableSince: string;
  readonly UnhealthyGroups: readonly number[];
}

export interface AutopilotGroupHealth {
  readonly GroupId: number;
  readonly Leader: string | null;
  readonly Healthy: boolean;
  readonly FailureTolerance: number;
  readonly UnhealthyServers: readonly { readonly ID: string; readonly Reason: string }[];
}

export interface AutopilotHealthReply {
  readonly Healthy: boolean;
  readonly FailureTolerance: number;
  readonly Servers: readonly AutopilotServerHealth[];
  readonly Groups: readonly AutopilotGroupHealth[];
  /** Conclave's addition: servers removed from groups and not added back (absent from older servers). */
  readonly RemovedServers?: readonly {
    readonly ID: string;
    readonly Groups: readonly number[];
    readonly RemovedAt: string;
    readonly Reason: string;
  }[];
}

export interface AutopilotStateServer {
  readonly ID: string;
  readonly Address: string;
  readonly Status: string;
  readonly Healthy: boolean;
  readonly LastContact: string | null;
  readonly LastIndex: number | null;
  readonly StableSince: string;
}

export interface AutopilotStateReply {
  readonly Healthy: boolean;
  readonly FailureTolerance: number;
  readonly Leader: string;
  readonly Voters: readonly string[];
  readonly Servers: Readonly<Record<string, AutopilotStateServer>>;
  readonly Groups: readonly {
    readonly GroupId: number;
    readonly Leader: string;
    readonly Healthy: boolean;
    readonly FailureTolerance: number;
    readonly Voters: readonly string[];
  }[];
}

type Json = Readonly<Record<string, unknown>>;

function parse(answer: HttpAnswer): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw badResponse('the answer is not JSON', answer.status);
  }
}

/** Check that each named field has the JSON type given; the value is then trusted as `T`. */
function shaped<T>(value: unknown, what: string, fields: Readonly<Record<string, string>>): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badResponse(`${what} is not a JSON object`);
  }
  const o = value as Json;
  for (const [name, type] of Object.entries(fields)) {
    const field = o[name];
    const actual = Array.isArray(field) ? 'array' : field === null ? 'null' : typeof field;
    if (!type.split('|').includes(actual)) throw badResponse(`${what}.${name} is not ${type}`);
  }
  return value as T;
}

const configFields = {
  CleanupDeadServers: 'boolean',
  LastContactThreshold: 'string',
  MaxTrailingLogs: 'number',
  MinQuorum: 'number',
  ServerStabilizationTime: 'string',
  DeadServerThreshold: 'string',
  CreateIndex: 'number',
  ModifyIndex: 'number',
};
const healthFields = { Healthy: 'boolean', FailureTolerance: 'number', Servers: 'array', Groups: 'array' };
const serverHealthFields = {
  ID: 'string',
  Healthy: 'boolean',
  Voter: 'boolean',
  Leader: 'boolean',
  LastContact: 'string|null',
  LastIndex: 'number|null',
  UnhealthyGroups: 'array',
};
const groupHealthFields = {
  GroupId: 'number',
  Healthy: 'boolean',
  FailureTolerance: 'number',
  UnhealthyServers: 'array',
};

/**
 * A client of the autopilot endpoints of one server. It owns its connections: call
 * `close()` when done.
 */
export class AutopilotClient {
  private readonly http: HttpTransport;

  constructor(options: { baseUrl: string; limits?: Partial<HttpLimits> }) {
    this.http = new HttpTransport({
      baseUrls: [options.baseUrl],
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
  }

  async configuration(options: { stale?: boolean } = {}): Promise<AutopilotConfiguration> {
    const answer = await this.http.send({
      method: 'GET',
      path: '/v1/operator/autopilot/configuration',
      query: { stale: options.stale === true ? true : undefined },
    });
    return shaped<AutopilotConfiguration>(parse(answer), 'autopilot configuration', configFields);
  }

  /**
   * Change the settings named in `update`. With `cas`, only if the configuration's
   * ModifyIndex is still `cas`; the answer says whether it was written.
   */
  async setConfiguration(options: { update: AutopilotSettingsUpdate; cas?: number }): Promise<boolean> {
    const answer = await this.http.send({
      method: 'PUT',
      path: '/v1/operator/autopilot/configuration',
      query: { cas: options.cas },
      body: JSON.stringify(options.update),
    });
    const written = parse(answer);
    if (typeof written !== 'boolean') throw badResponse('expected true or false', answer.status);
    return written;
  }

  /** The health report; a 429 (some server or group unhealthy) is an answer, not an error. */
  async health(): Promise<AutopilotHealthReply> {
    const answer = await this.http.send({
      method: 'GET',
      path: '/v1/operator/autopilot/health',
      accept: [429],
    });
    const health = shaped<AutopilotHealthReply>(parse(answer), 'health', healthFields);
    health.Servers.forEach((s, i) => void shaped(s, `health.Servers[${i}]`, serverHealthFields));
    health.Groups.forEach((g, i) => void shaped(g, `health.Groups[${i}]`, groupHealthFields));
    if (health.Healthy !== (answer.status === 200)) {
      throw badResponse(`health says Healthy=${health.Healthy} with status ${answer.status}`, answer.status);
    }
    return health;
  }

  async state(): Promise<AutopilotStateReply> {
    const answer = await this.http.send({ method: 'GET', path: '/v1/operator/autopilot/state' });
    const state = shaped<AutopilotStateReply>(parse(answer), 'state', {
      Healthy: 'boolean',
      FailureTolerance: 'number',
      Leader: 'string',
      Voters: 'array',
      Servers: 'object',
      Groups: 'array',
    });
    for (const [id, s] of Object.entries(state.Servers)) {
      shaped(s, `state.Servers.${id}`, { ID: 'string', Status: 'string', Healthy: 'boolean' });
    }
    state.Groups.forEach(
      (g, i) =>
        void shaped(g, `state.Groups[${i}]`, {
          GroupId: 'number',
          Leader: 'string',
          Healthy: 'boolean',
          Voters: 'array',
        }),
    );
    return state;
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
