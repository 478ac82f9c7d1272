import { once } from 'node:events';
import { finished, Readable, Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConclaveError } from '../errors.js';
import type { SnapshotService } from '../service/snapshot.js';
import { hasParam, queryOf } from './query.js';
import { sendError } from './send-error.js';

export const snapshotUrl = '/v1/snapshot';
export const snapshotContentType = 'application/x-gzip';

/** How much of a failed restore's body is read and dropped before the connection is cut. */
export interface DrainLimits {
  /** Body bytes read and dropped after the failure (bytes). */
  readonly drainBytesMax: number;
  /** How long they may take (ms). */
  readonly drainMs: number;
}

/** Enough for a client to see the answer after its next few writes, not to upload the rest. */
export const defaultDrainLimits: DrainLimits = { drainBytesMax: 4 * 1024 * 1024, drainMs: 10_000 };

/**
 * `GET /v1/snapshot` streams an archive of every group (`?stale`: this server's own state,
 * which works without leaders); `PUT /v1/snapshot` restores one into the running cluster.
 * Both stream: the PUT body goes to the restore as it arrives (never buffered), counted
 * against `archiveBytesMax`. In their own fastify context, so no other parser reads the body.
 */
export function registerSnapshotRoutes(
  app: FastifyInstance,
  options: { snapshots: SnapshotService; clusterId: string; drainLimits?: Partial<DrainLimits> },
): void {
  const { snapshots, clusterId } = options;
  const drainLimits = { ...defaultDrainLimits, ...options.drainLimits };
  app.register(async (api) => {
    api.removeAllContentTypeParsers();
    // Hands the request stream on unread, whatever its content type.
    api.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    api.setErrorHandler((error, _request, reply) => sendError(reply, error));

    api.get(snapshotUrl, async (request, reply) => {
      const stale = hasParam(queryOf(request), 'stale');
      const index = snapshots.appliedIndexSum();
      const stream = snapshots.save({ clusterId, stale });
      // Wait for the first bytes (group 0 opened) so that a failure to start, such as no
      // leader, is answered with its own status rather than a cut-off 200.
      await firstBytes(stream);
      return reply
        .header('Content-Type', snapshotContentType)
        .header('X-Consul-Index', String(index))
        .header('X-Consul-Effective-Consistency', stale ? 'stale' : 'leader')
        .send(stream);
    });

    api.put(snapshotUrl, async (request, reply) => {
      const source = request.body;
      if (!(source instanceof Readable)) throw notAnArchive();
      try {
        const outcome = await snapshots.restore(counted({ source, bytesMax: snapshots.archiveBytesMax }));
        return {
          clusterId: outcome.meta.clusterId,
          createdAt: outcome.meta.createdAt,
          groups: outcome.groups,
        };
      } finally {
        if (!source.readableEnded) discardRest({ request, source, reply, limits: drainLimits });
      }
    });
  });
}

async function firstBytes(stream: Readable): Promise<void> {
  if (stream.readableLength > 0) return;
  // Rejects with the stream's error if it fails first.
  await once(stream, 'readable');
}

function notAnArchive(): ConclaveError {
  return new ConclaveError({
    code: 'SNAPSHOT_ARCHIVE_INVALID',
    message: 'the body must be a snapshot archive',
  });
}

/**
 * A restore that failed before the end of its body: the rest is read and dropped, so the
 * client, still sending, gets the answer rather than a reset connection, and the
 * connection closes after it (Node ends it once the `Connection: close` answer is out).
 * The server sets no requestTimeout, so this does not rely on that: past drainBytesMax or
 * drainMs the socket is cut, whatever the client does (one that stalls, or never reads).
 */
function discardRest(options: {
  request: FastifyRequest;
  source: Readable;
  reply: FastifyReply;
  limits: DrainLimits;
}): void {
  const { request, source, reply, limits } = options;
  reply.header('Connection', 'close');
  let bytes = 0;
  const cut = () => {
    stop();
    request.raw.socket.destroy();
  };
  const timer = setTimeout(cut, limits.drainMs);
  timer.unref();
  const onData = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limits.drainBytesMax) cut();
  };
  const stop = () => {
    clearTimeout(timer);
    source.off('data', onData);
  };
  source.unpipe();
  source.on('data', onData);
  source.once('close', stop);
  source.resume();
}

/**
 * The request body, refused past `bytesMax` (compressed) and when empty. Piped, not
 * pipelined: a failed restore must not destroy the request, or the socket goes with it and
 * the client never sees the error; Node discards the unread rest once the reply is sent.
 */
function counted(options: { source: Readable; bytesMax: number }): Readable {
  const { source, bytesMax } = options;
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > bytesMax) {
        callback(
          new ConclaveError({
            code: 'SNAPSHOT_ARCHIVE_INVALID',
            message: `the archive is larger than archiveBytesMax (${bytesMax} bytes)`,
          }),
        );
        return;
      }
      callback(null, chunk);
    },
    flush(callback) {
      callback(bytes === 0 ? notAnArchive() : null);
    },
  });
  // A client that goes away mid-upload fails the restore (which aborts what it staged).
  finished(source, (error) => {
    if (error !== undefined && error !== null) counter.destroy(error);
  });
  return source.pipe(counter);
}
