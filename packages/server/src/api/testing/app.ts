import Fastify, { type FastifyInstance } from 'fastify';
import type { ConclaveService } from '../../service/types.js';
import { type ConsulApiOptions, registerConsulApi } from '../index.js';
import { RecordingService } from './recording-service.js';

/**
 * A fastify app with the Consul API over a RecordingService, shaped like the agent's: its
 * root context already has a catch-all body parser, which the API's routes must not trip on.
 */
export async function apiApp(
  options: { answers?: Partial<ConclaveService> } & Omit<ConsulApiOptions, 'service'> = {},
): Promise<{ app: FastifyInstance; service: RecordingService }> {
  const { answers, ...rest } = options;
  const service = new RecordingService(answers);
  const app = Fastify({ logger: false });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  registerConsulApi(app, { ...rest, service });
  await app.ready();
  return { app, service };
}
