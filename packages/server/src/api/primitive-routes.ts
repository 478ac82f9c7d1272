import {
  isPartitionedKind,
  isPrimitiveKind,
  opModeOf,
  type PrimitiveKind,
  primitivePageEntriesMax,
} from '@conclave/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Packr } from 'msgpackr';
import { ConclaveError } from '../errors.js';
import { commandProblem, kindMachines, type PrimitiveCommand } from '../fsm/index.js';
import { sendJson } from './consul-json.js';
import type { ApiContext } from './context.js';
import { badRequest, paramValue, queryOf } from './query.js';
import { parseReadRequest, setReadMeta } from './read-request.js';

/** The primitives' route: `POST /v1/primitive/<kind>/<name>/<op>` (docs/primitives.md). */
export const primitiveUrl = '/v1/primitive/:kind/:name/:op';

/** Body framing beyond a value's base64: field names, a session id, a key, numbers. */
const primitiveBodyFramingBytes = 16 * 1024;

interface PrimitiveParams {
  readonly kind: string;
  readonly name: string;
  readonly op: string;
}

/**
 * Every primitive operation, one route. A write goes through Raft (with `session` and
 * `seq`, exactly once); a read takes Consul's read parameters (`?consistent`, `?stale`,
 * `?index` and `?wait` to block until the primitive changes). The answer is `{ result,
 * index }` with bytes as base64, and X-Consul-Index on reads.
 */
export function registerPrimitiveRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const bodyLimit = Math.ceil(ctx.limits.kvValueBytesMax / 3) * 4 + primitiveBodyFramingBytes;
  app.post<{ Params: PrimitiveParams }>(primitiveUrl, { bodyLimit }, async (request, reply) => {
    const { kind, name, op } = request.params;
    const body = parseBody({ raw: request.body, contentType: request.headers['content-type'] });
    const command = checkedCommand({ kind, name, op, body, ctx });
    const mode = opModeOf(command);
    if (mode === 'write' || mode === 'gather-write') {
      const { result, index } = await ctx.service.primitiveWrite(command);
      return sendResult(reply, { result, index });
    }
    const group = groupOf({ body, groupCount: ctx.service.groupCount() });
    if (mode === 'events') return sendEvents({ request, reply, ctx, command, group });
    const read = parseReadRequest(queryOf(request), { limits: ctx.limits, random: ctx.random, reply });
    const { kind: k, name: n, op: o, args } = command;
    const answer = await ctx.service.primitiveRead({
      ...read,
      read: { kind: k, name: n, op: o, args },
      group,
    });
    setReadMeta(reply, answer.meta);
    return sendResult(reply, { result: answer.value, index: Math.max(1, answer.meta.index) });
  });
}

/**
 * `events`: the changes after `args.after`, from this server's copy; with `?wait=` it waits
 * for the first (Consul's wait bounds apply). `compacted: true` says the server no longer
 * has every change after that version: read the state and resume from its version.
 */
async function sendEvents(options: {
  request: FastifyRequest;
  reply: FastifyReply;
  ctx: ApiContext;
  command: PrimitiveCommand;
  group: number;
}): Promise<FastifyReply> {
  const { request, reply, ctx, command, group } = options;
  const query = queryOf(request);
  const waitText = paramValue(query, 'wait');
  const read = parseReadRequest(
    { ...query, ...(waitText === undefined ? {} : { index: '1' }) },
    { limits: ctx.limits, random: ctx.random, reply },
  );
  const key = command.args.key as string | undefined;
  const answer = await ctx.service.primitiveEvents({
    read: {
      kind: command.kind,
      name: command.name,
      after: (command.args.after as number | undefined) ?? 0,
      key,
    },
    group,
    waitMs: read.block?.waitMs ?? 0,
    signal: read.signal,
  });
  setReadMeta(reply, answer.meta);
  const partitionedStream = isPartitionedKind(command.kind) && key === undefined;
  const value = partitionedStream
    ? { ...answer.value, group, groups: ctx.service.groupCount() }
    : answer.value;
  return sendResult(reply, { result: value, index: Math.max(1, answer.meta.index) });
}

interface PrimitiveBody {
  readonly args: Record<string, unknown>;
  readonly session: string | null;
  readonly seq: number | null;
  readonly group: number | null;
}

/** A body's bytes as a value: msgpack when its Content-Type says so, else JSON. */
function decodeBody(options: { raw: unknown; contentType: string | undefined }): unknown {
  const raw = options.raw instanceof Buffer ? options.raw : Buffer.alloc(0);
  if (isMsgpack(options.contentType)) {
    if (raw.byteLength === 0) return {};
    try {
      return msgpack.unpack(raw);
    } catch (error) {
      throw badRequest(`the body is not msgpack: ${(error as Error).message}`);
    }
  }
  const text = raw.toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`the body is not JSON: ${(error as Error).message}`);
  }
}

function parseBody(options: { raw: unknown; contentType: string | undefined }): PrimitiveBody {
  const body = decodeBody(options);
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) {
    throw badRequest('the body must be an object { args, session, seq }');
  }
  const fields = body as Record<string, unknown>;
  for (const field of Object.keys(fields)) {
    if (!['args', 'session', 'seq', 'group'].includes(field)) {
      throw badRequest(
        `the body has an unknown field ${JSON.stringify(field)} (it takes args, session, seq, group)`,
      );
    }
  }
  const args = fields.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args))
    throw badRequest('args must be an object');
  const session = fields.session ?? null;
  if (session !== null && (typeof session !== 'string' || !/^[0-9a-f-]{36}$/.test(session))) {
    throw badRequest('session must be a session id (a UUID)');
  }
  return {
    args: args as Record<string, unknown>,
    session: session as string | null,
    seq: optionalCount(fields.seq, 'seq'),
    group: optionalCount(fields.group, 'group', 0),
  };
}

function optionalCount(value: unknown, what: string, min = 1): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw badRequest(`${what} must be an integer >= ${min}`);
  }
  return value as number;
}

/** The call checked as the state machine will assert it, with its base64 fields decoded. */
function checkedCommand(options: {
  kind: string;
  name: string;
  op: string;
  body: PrimitiveBody;
  ctx: ApiContext;
}): PrimitiveCommand {
  const { kind, name, op, body, ctx } = options;
  if (!isPrimitiveKind(kind) || opModeOf({ kind, op }) === null) {
    const what = isPrimitiveKind(kind)
      ? `${kind} has no operation ${JSON.stringify(op)}`
      : `there is no primitive kind ${JSON.stringify(kind)}`;
    throw new ConclaveError({ code: 'PRIMITIVE_UNKNOWN', message: what });
  }
  const args = decodeBytes({ kind, op, args: body.args, valueBytesMax: ctx.limits.kvValueBytesMax });
  if (body.seq !== null && body.session === null) throw badRequest('seq needs a session');
  const command: PrimitiveCommand = { kind, name, op, args, session: body.session, seq: body.seq };
  const problem = commandProblem(command);
  if (problem !== null) {
    const code = problem.endsWith('needs a session') ? 'SESSION_REQUIRED' : 'BAD_REQUEST';
    throw new ConclaveError({ code, message: `${kind} ${op}: ${problem}` });
  }
  const limit = args.limit;
  if (typeof limit === 'number' && limit > primitivePageEntriesMax) {
    throw badRequest(`args.limit is ${limit}, more than ${primitivePageEntriesMax}`);
  }
  return command;
}

/** The args with every bytes field decoded from base64, refused over the value bound. */
function decodeBytes(options: {
  kind: PrimitiveKind;
  op: string;
  args: Record<string, unknown>;
  valueBytesMax: number;
}): Record<string, unknown> {
  const spec = kindMachines[options.kind].args[options.op] ?? {};
  const decoded: Record<string, unknown> = { ...options.args };
  for (const [field, type] of Object.entries(spec)) {
    const value = decoded[field];
    if (!(type.startsWith('bytes') || type === 'steps') || value === undefined || value === null) continue;
    if (type === 'steps') {
      if (!Array.isArray(value)) throw badRequest(`args.${field} must be a list of steps`);
      decoded[field] = value.map((step: unknown, i) =>
        typeof step === 'object' && step !== null && 'value' in step
          ? { ...step, value: bytesOf({ value: step.value, what: `args.${field}[${i}].value`, ...options }) }
          : step,
      );
    } else if (type.startsWith('bytes[]')) {
      if (!Array.isArray(value)) throw badRequest(`args.${field} must be a list of base64 strings`);
      decoded[field] = value.map((item, i) =>
        bytesOf({ value: item, what: `args.${field}[${i}]`, ...options }),
      );
    } else {
      decoded[field] = bytesOf({ value, what: `args.${field}`, ...options });
    }
  }
  return decoded;
}

function bytesOf(options: { value: unknown; what: string; valueBytesMax: number }): Uint8Array {
  const { value, what, valueBytesMax } = options;
  // A msgpack body carries bytes as they are; JSON carries them as base64.
  if (value instanceof Uint8Array) return checkedSize({ bytes: new Uint8Array(value), what, valueBytesMax });
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw badRequest(`${what} must be base64`);
  }
  return checkedSize({ bytes: new Uint8Array(Buffer.from(value, 'base64')), what, valueBytesMax });
}

function checkedSize(options: { bytes: Uint8Array; what: string; valueBytesMax: number }): Uint8Array {
  const { bytes, what, valueBytesMax } = options;
  if (bytes.byteLength > valueBytesMax) {
    throw new ConclaveError({
      code: 'VALUE_TOO_LARGE',
      message: `${what} is ${bytes.byteLength} bytes, more than ${valueBytesMax}`,
    });
  }
  return bytes;
}

function groupOf(options: { body: PrimitiveBody; groupCount: number }): number {
  const group = options.body.group ?? 0;
  if (group >= options.groupCount) {
    throw badRequest(`group must be below the cluster's ${options.groupCount} groups, got ${group}`);
  }
  return group;
}

/** The answer in msgpack (bytes as they are) when the request accepts it, else JSON (base64). */
function sendResult(reply: FastifyReply, answer: { result: unknown; index: number }): FastifyReply {
  const accept = reply.request.headers.accept;
  if (accept !== undefined && isMsgpack(accept)) {
    return reply
      .code(200)
      .type(msgpackType)
      .send(msgpack.pack({ result: answer.result, index: answer.index }));
  }
  return sendJson(reply, { result: toJson(answer.result), index: answer.index });
}

const msgpackType = 'application/msgpack';
// Records off: plain maps and arrays any msgpack library reads.
const msgpack = new Packr({ useRecords: false, moreTypes: false });

function isMsgpack(header: string | undefined): boolean {
  return header !== undefined && /\bapplication\/(x-)?msgpack\b/.test(header);
}

/** Bytes as base64, everything else as it is. */
export function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([field, inner]) => [field, toJson(inner)]));
  }
  return value;
}
