import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConclaveError } from '../errors.js';
import type { ReadRequest } from '../service/types.js';
import { kvEntryJson, sendJson } from './consul-json.js';
import type { ApiContext } from './context.js';
import {
  checkKey,
  hasParam,
  paramValue,
  type Query,
  queryOf,
  refuseConflicting,
  sessionParam,
  unsignedParam,
} from './query.js';
import { parseReadRequest, setReadMeta } from './read-request.js';

type KvRequest = FastifyRequest<{ Params: { '*': string } }>;

/** The KV routes' path, so a body-limit error can be told from other routes'. */
export const kvUrl = '/v1/kv/*';

/**
 * `/v1/kv/<key>`: Consul's KVS endpoint. Every parameter is checked before the service is
 * called, so a bad request never writes.
 */
export function registerKvRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(kvUrl, (request: KvRequest, reply) => kvGet(ctx, request, reply));
  // The route's own body limit: a value over kvValueBytesMax is refused (413) before it is read whole.
  app.put(kvUrl, { bodyLimit: ctx.limits.kvValueBytesMax }, (request: KvRequest, reply) =>
    kvPut(ctx, request, reply),
  );
  app.delete(kvUrl, (request: KvRequest, reply) => kvDelete(ctx, request, reply));
}

async function kvGet(ctx: ApiContext, request: KvRequest, reply: FastifyReply): Promise<FastifyReply> {
  const query = queryOf(request);
  const read = parseReadRequest(query, { ...ctx, reply });
  const path = request.params['*'];
  // ?keys wins over ?recurse, as in Consul.
  if (hasParam(query, 'keys')) return kvKeys(ctx, { query, read, prefix: path }, reply);
  if (hasParam(query, 'recurse')) {
    const prefix = checkKey(path, {
      keyBytesMax: ctx.limits.kvKeyBytesMax,
      allowEmpty: true,
      what: 'key prefix',
    });
    const { value: entries, meta } = await ctx.service.kvList({ ...read, prefix });
    setReadMeta(reply, meta);
    if (entries.length === 0) return reply.code(404).send();
    return sendJson(reply, entries.map(kvEntryJson));
  }
  const key = checkKey(path, { keyBytesMax: ctx.limits.kvKeyBytesMax, allowEmpty: false, what: 'key name' });
  const { value: entry, meta } = await ctx.service.kvGet({ ...read, key });
  setReadMeta(reply, meta);
  // Consul answers a missing key with a bare 404: clients test the status, not a body.
  if (entry === null) return reply.code(404).send();
  if (hasParam(query, 'raw')) {
    return reply.type('application/octet-stream').send(Buffer.from(entry.value));
  }
  return sendJson(reply, [kvEntryJson(entry)]);
}

async function kvKeys(
  ctx: ApiContext,
  request: { query: Query; read: ReadRequest; prefix: string },
  reply: FastifyReply,
): Promise<FastifyReply> {
  const prefix = checkKey(request.prefix, {
    keyBytesMax: ctx.limits.kvKeyBytesMax,
    allowEmpty: true,
    what: 'key prefix',
  });
  // Consul still honours its historical misspelling "seperator"; the right spelling wins.
  const separator = paramValue(request.query, 'separator') ?? paramValue(request.query, 'seperator') ?? '';
  const { value: keys, meta } = await ctx.service.kvKeys({
    ...request.read,
    prefix,
    separator: separator === '' ? null : separator,
  });
  setReadMeta(reply, meta);
  // The root is never "not found": an empty keyspace lists as [].
  if (keys.length === 0 && prefix !== '') return reply.code(404).send();
  return sendJson(reply, keys);
}

async function kvPut(ctx: ApiContext, request: KvRequest, reply: FastifyReply): Promise<FastifyReply> {
  const query = queryOf(request);
  const key = checkKey(request.params['*'], {
    keyBytesMax: ctx.limits.kvKeyBytesMax,
    allowEmpty: false,
    what: 'key name',
  });
  refuseConflicting(query, ['cas', 'acquire', 'release']);
  const flags = unsignedParam(query, 'flags') ?? 0;
  const cas = unsignedParam(query, 'cas');
  const acquire = sessionParam(query, 'acquire');
  const release = sessionParam(query, 'release');
  const value = bodyBytes(request.body, ctx.limits.kvValueBytesMax);
  const { ok } = await ctx.service.kvPut({ key, value, flags, cas, acquire, release });
  // Consul answers a plain set with true; only cas, acquire and release report their outcome.
  const conditional = cas !== null || acquire !== null || release !== null;
  return sendJson(reply, conditional ? ok : true);
}

async function kvDelete(ctx: ApiContext, request: KvRequest, reply: FastifyReply): Promise<FastifyReply> {
  const query = queryOf(request);
  refuseConflicting(query, ['recurse', 'cas']);
  const recurse = hasParam(query, 'recurse');
  // Unlike Consul, an empty key is refused even with ?recurse: deleting the whole keyspace
  // would span every Raft group, and one request must not do that by accident.
  const key = checkKey(request.params['*'], {
    keyBytesMax: ctx.limits.kvKeyBytesMax,
    allowEmpty: false,
    what: 'key name',
  });
  const cas = unsignedParam(query, 'cas');
  const { ok } = await ctx.service.kvDelete({ key, recurse, cas });
  return sendJson(reply, cas === null ? true : ok);
}

/** The raw request body as bytes (a PUT with no body stores an empty value). */
function bodyBytes(body: unknown, valueBytesMax: number): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (!(body instanceof Uint8Array)) {
    throw new Error('the Consul API parses every body as a buffer; a different parser ran');
  }
  // The route's bodyLimit already refuses this; kept so the limit holds whatever parser runs.
  if (body.byteLength > valueBytesMax) {
    throw new ConclaveError({
      code: 'VALUE_TOO_LARGE',
      message: `the value is ${body.byteLength} bytes, more than the limit of ${valueBytesMax} (kvValueBytesMax)`,
    });
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}
