import { isPrimitiveKind, opModeOf, primitiveKeyCharsMax } from '@conclave/protocol';
import { fastifySSE } from '@fastify/sse';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ConclaveError } from '../errors.js';
import { commandProblem, textProblem } from '../fsm/index.js';
import type { ApiContext } from './context.js';
import { toJson } from './primitive-routes.js';
import { badRequest, paramValue, parseUnsigned, queryOf } from './query.js';

/**
 * A primitive's changes as Server-Sent Events: `GET /v1/primitive/<kind>/<name>/events`
 * with `?after=<version>` (or the `Last-Event-ID` a reconnecting browser sends), `?key=`
 * for one entry of a partitioned primitive, `?group=` for one group of all its entries.
 * Each change is an event `change` whose id is its version, so a reconnect resumes with
 * no gap and no repeat; `compacted` says the server no longer has the changes after that
 * version (read the state and reconnect from its version), and ends the stream.
 */
export const primitiveStreamUrl = '/v1/primitive/:kind/:name/events';

/** One long-poll of the stream's loop waits this long for a change, then polls again. */
export const streamPollWaitMs = 30_000;

interface StreamParams {
  readonly kind: string;
  readonly name: string;
}

export async function registerPrimitiveStream(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  await app.register(fastifySSE, { heartbeatInterval: 15_000 });
  app.get<{ Params: StreamParams }>(primitiveStreamUrl, { sse: 'only' }, async (request, reply) => {
    const query = queryOf(request);
    const read = streamRead({
      kind: request.params.kind,
      name: request.params.name,
      after: paramValue(query, 'after') ?? reply.sse.lastEventId ?? undefined,
      key: paramValue(query, 'key'),
    });
    const groupText = paramValue(query, 'group');
    const group = groupText === undefined ? 0 : parseUnsigned(groupText, 'group');
    if (group >= ctx.service.groupCount())
      throw badRequest(`group must be below ${ctx.service.groupCount()}`);
    await stream({ reply, ctx, read, group });
  });
}

type StreamRead = {
  kind: Parameters<typeof commandProblem>[0]['kind'];
  name: string;
  after: number;
  key?: string;
};

function streamRead(options: {
  kind: string;
  name: string;
  after: string | undefined;
  key: string | undefined;
}): StreamRead {
  const { kind, name, key } = options;
  if (!isPrimitiveKind(kind) || opModeOf({ kind, op: 'events' }) === null) {
    throw new ConclaveError({
      code: 'PRIMITIVE_UNKNOWN',
      message: `there is no primitive kind ${JSON.stringify(kind)}`,
    });
  }
  const after =
    options.after === undefined || options.after === '' ? 0 : parseUnsigned(options.after, 'after');
  if (key !== undefined) {
    const problem = textProblem({ value: key, charsMax: primitiveKeyCharsMax });
    if (problem !== null) throw badRequest(`key ${problem}`);
  }
  const args = { after, ...(key === undefined ? {} : { key }) };
  const problem = commandProblem({ kind, name, op: 'events', args, session: null });
  if (problem !== null) throw badRequest(`${kind} events: ${problem}`);
  return { kind, name, after, ...(key === undefined ? {} : { key }) };
}

/** Sends each change as it is applied here, until the client goes or the log is compacted. */
async function stream(options: {
  reply: FastifyReply;
  ctx: ApiContext;
  read: StreamRead;
  group: number;
}): Promise<void> {
  const { reply, ctx, group } = options;
  const gone = new AbortController();
  reply.sse.onClose(() => gone.abort());
  reply.raw.once('close', () => gone.abort());
  let after = options.read.after;
  while (!gone.signal.aborted && reply.sse.isConnected) {
    const startedMs = performance.now();
    const answer = await ctx.service.primitiveEvents({
      read: { ...options.read, after },
      group,
      waitMs: streamPollWaitMs,
      signal: gone.signal,
    });
    if (answer.value.compacted) {
      await reply.sse.send({ event: 'compacted', data: { after } });
      reply.sse.close();
      return;
    }
    for (const event of answer.value.events) {
      await reply.sse.send({ id: String(event.version), event: 'change', data: toJson(event) });
      after = event.version;
    }
    // A wait cut short with nothing to send: the server is stopping (its blocking reads all
    // return at once). End the stream; the client reconnects with its Last-Event-ID.
    if (answer.value.events.length === 0 && performance.now() - startedMs < streamPollWaitMs / 2) break;
  }
  reply.sse.close();
}
