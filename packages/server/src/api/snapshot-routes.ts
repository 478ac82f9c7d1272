import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ConclaveError } from '../errors.js';
import type { SnapshotService } from '../service/snapshot.js';
import { hasParam, queryOf } from './query.js';
import { bodyTooLargeCode, sendError } from './send-error.js';

export const snapshotUrl = '/v1/snapshot';
export const snapshotContentType = 'application/x-gzip';

/**
 * `GET /v1/snapshot` streams an archive of every group (`?stale`: this server's own state,
 * which works without leaders); `PUT /v1/snapshot` restores one into the running cluster.
 * In their own fastify context: the body is read raw up to `archiveBytesMax`.
 */
export function registerSnapshotRoutes(
  app: FastifyInstance,
  options: { snapshots: SnapshotService; clusterId: string },
): void {
  const { snapshots, clusterId } = options;
  app.register(async (api) => {
    api.removeAllContentTypeParsers();
    api.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: snapshots.archiveBytesMax },
      (_r, body, done) => done(null, body),
    );
    api.setErrorHandler((error, _request, reply) =>
      sendError(reply, tooLarge(error, snapshots.archiveBytesMax)),
    );

    api.get(snapshotUrl, async (request, reply) => {
      const stale = hasParam(queryOf(request), 'stale');
      const index = snapshots.appliedIndexSum();
      const stream = snapshots.save({ clusterId, stale });
      // Wait for the first bytes (group 0 captured) so that a failure to start, such as no
      // leader, is answered with its own status rather than a cut-off 200.
      await firstBytes(stream);
      return reply
        .header('Content-Type', snapshotContentType)
        .header('X-Consul-Index', String(index))
        .header('X-Consul-Effective-Consistency', stale ? 'stale' : 'leader')
        .send(stream);
    });

    api.put(snapshotUrl, async (request) => {
      if (!(request.body instanceof Buffer) || request.body.length === 0) {
        throw new ConclaveError({
          code: 'SNAPSHOT_ARCHIVE_INVALID',
          message: 'the body must be a snapshot archive',
        });
      }
      const outcome = await snapshots.restore(request.body);
      return { clusterId: outcome.meta.clusterId, createdAt: outcome.meta.createdAt, groups: outcome.groups };
    });
  });
}

async function firstBytes(stream: Readable): Promise<void> {
  if (stream.readableLength > 0) return;
  // Rejects with the stream's error if it fails first.
  await once(stream, 'readable');
}

function tooLarge(error: unknown, archiveBytesMax: number): unknown {
  const over =
    typeof error === 'object' && error !== null && 'code' in error && error.code === bodyTooLargeCode;
  if (!over) return error;
  return new ConclaveError({
    code: 'SNAPSHOT_ARCHIVE_INVALID',
    message: `the archive is larger than archiveBytesMax (${archiveBytesMax} bytes)`,
  });
}
