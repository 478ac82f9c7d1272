import type { ConclaveService } from '../service/types.js';
import type { ConsulApiLimits } from './limits.js';

/** What every route of the Consul API needs, resolved once at registration. */
export interface ApiContext {
  readonly service: ConclaveService;
  readonly limits: ConsulApiLimits;
  /** In [0, 1): blocking-query jitter. Injected so tests can fix it. */
  readonly random: () => number;
  /** The node a session belongs to when its creator names none (Consul: the agent's node). */
  readonly nodeName: string;
}
