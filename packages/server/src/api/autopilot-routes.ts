import { formatGoDuration, type RemovedServer } from '@conclave/protocol';
import type { FastifyInstance } from 'fastify';
import type { Autopilot, AutopilotHealth } from '../autopilot/autopilot.js';
import type { GroupHealth } from '../autopilot/health.js';
import type { OperatorService } from '../service/operator.js';
import { autopilotConfigJson, parseAutopilotBody } from './autopilot-json.js';
import { sendJson } from './consul-json.js';
import { parseJsonBody } from './json-fields.js';
import { hasParam, paramValue, parseUnsigned, queryOf } from './query.js';
import { sendError } from './send-error.js';

/** A settings body is a dozen fields; anything near this is not one. */
export const autopilotBodyBytesMax = 16 * 1024;

/**
 * Consul's autopilot endpoints: the replicated configuration (GET, PUT with `?cas`),
 * health (429 while any server in any group is unhealthy) and state, both reported per
 * server across groups and per group. Bodies are read raw, whatever their Content-Type.
 */
export function registerAutopilotRoutes(
  app: FastifyInstance,
  options: {
    autopilot: Autopilot;
    operator: OperatorService;
    /** Servers removed from groups and not added back, as this server applied it. */
    removedServers?: () => readonly RemovedServer[];
  },
): void {
  const { autopilot, operator } = options;
  const removed = options.removedServers ?? (() => []);
  app.register(async (api) => {
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    api.setErrorHandler((error, _request, reply) => sendError(reply, error));

    api.get('/v1/operator/autopilot/configuration', async (request, reply) => {
      const stale = hasParam(queryOf(request), 'stale');
      return sendJson(reply, autopilotConfigJson(await autopilot.configuration({ stale })));
    });

    api.put(
      '/v1/operator/autopilot/configuration',
      { bodyLimit: autopilotBodyBytesMax },
      async (request, reply) => {
        const casText = paramValue(queryOf(request), 'cas');
        const cas = casText === undefined ? null : parseUnsigned(casText, 'cas');
        const current = await autopilot.configuration({ stale: false });
        const settings = parseAutopilotBody(parseJsonBody(request.body), current.settings);
        return sendJson(reply, await autopilot.setConfiguration({ settings, cas }));
      },
    );

    api.get('/v1/operator/autopilot/health', async (_request, reply) => {
      const health = await autopilot.health();
      const body = { ...healthJson(health, addresses(operator)), RemovedServers: removedJson(removed()) };
      return sendJson(reply, body, health.healthy ? 200 : 429);
    });

    api.get('/v1/operator/autopilot/state', async (_request, reply) => {
      return sendJson(reply, stateJson(await autopilot.health(), addresses(operator)));
    });
  });
}

/**
 * A Conclave addition to Consul's reply: servers autopilot (or an operator) removed and that
 * have not come back, so a server that vanished from Servers is still accounted for.
 */
export function removedJson(removed: readonly RemovedServer[]) {
  return removed.map((r) => ({ ID: r.id, Groups: r.groups, RemovedAt: r.removedAt, Reason: r.reason }));
}

type AddressOf = (id: string) => string;

function addresses(operator: OperatorService): AddressOf {
  const known = new Map(operator.cluster().servers.map((s) => [s.id, s.address]));
  return (id) => known.get(id) ?? id;
}

const iso = (ms: number | undefined) => new Date(ms ?? 0).toISOString();
const duration = (ms: number | null) => (ms === null ? null : formatGoDuration(ms));

/** Consul's OperatorHealthReply, plus Groups: which groups are unhealthy, and who in them. */
export function healthJson(health: AutopilotHealth, addressOf: AddressOf) {
  return {
    Healthy: health.healthy,
    FailureTolerance: health.failureTolerance,
    Servers: health.servers.map((s) => ({
      ID: s.id,
      Name: s.id,
      Address: addressOf(s.id),
      SerfStatus: s.lastContactMs === null ? 'failed' : 'alive',
      Version: '',
      Leader: s.leader,
      LastContact: duration(s.lastContactMs),
      LastTerm: s.lastTerm,
      LastIndex: s.lastIndex,
      Healthy: s.healthy,
      Voter: s.voter,
      StableSince: iso(health.stableSinceMs.get(s.id)),
      UnhealthyGroups: s.unhealthyGroups,
    })),
    Groups: health.groups.map((g) => ({
      GroupId: g.groupId,
      Leader: g.leaderId,
      Healthy: g.healthy,
      Voters: g.voters,
      FailureTolerance: g.failureTolerance,
      UnhealthyServers: g.members.filter((m) => !m.healthy).map((m) => ({ ID: m.id, Reason: m.reason })),
    })),
  };
}

/** Consul's autopilot state, simplified: servers across groups, then each group's own state. */
export function stateJson(health: AutopilotHealth, addressOf: AddressOf) {
  const group0 = health.groups.find((g) => g.groupId === 0);
  return {
    Healthy: health.healthy,
    FailureTolerance: health.failureTolerance,
    Leader: group0?.leaderId ?? '',
    Voters: health.servers.filter((s) => s.voter).map((s) => s.id),
    Servers: Object.fromEntries(
      health.servers.map((s) => [
        s.id,
        {
          ID: s.id,
          Name: s.id,
          Address: addressOf(s.id),
          NodeStatus: s.lastContactMs === null ? 'failed' : 'alive',
          LastContact: duration(s.lastContactMs),
          LastTerm: s.lastTerm,
          LastIndex: s.lastIndex,
          Healthy: s.healthy,
          StableSince: iso(health.stableSinceMs.get(s.id)),
          Status: s.leader ? 'leader' : s.voter ? 'voter' : 'non-voter',
          NodeType: s.voter ? 'voter' : 'non-voter',
        },
      ]),
    ),
    Groups: health.groups.map(groupStateJson),
  };
}

function groupStateJson(g: GroupHealth) {
  return {
    GroupId: g.groupId,
    Leader: g.leaderId ?? '',
    Healthy: g.healthy,
    FailureTolerance: g.failureTolerance,
    Voters: g.members.filter((m) => m.voter).map((m) => m.id),
    Servers: Object.fromEntries(
      g.members.map((m) => [
        m.id,
        {
          ID: m.id,
          Status: m.leader ? 'leader' : m.voter ? 'voter' : 'non-voter',
          Healthy: m.healthy,
          Reason: m.reason,
          LastContact: duration(m.lastContactMs),
          LastTerm: m.term,
          LastIndex: m.lastIndex,
          TrailingLogs: m.trailingEntries,
        },
      ]),
    ),
  };
}
