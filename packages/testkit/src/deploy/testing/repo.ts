/** What the deploy/ checks share: where the repository is, and facts read from its sources. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentLimits } from '@conclave/server';

export const repoRoot = fileURLToPath(new URL('../../../../../', import.meta.url));

export function repoFile(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8');
}

/**
 * The longest a clean shutdown may take to hand leadership away, in ms: the agent waits at
 * most `shutdownTransferTicksMax` ticks (read from agent.ts, where it is private) of the
 * largest --tick-ms it accepts.
 */
export function shutdownHandOffMsMax(): number {
  const match = /const shutdownTransferTicksMax = (\d+);/.exec(
    repoFile('packages/server/src/agent/agent.ts'),
  );
  if (match === null)
    throw new Error('shutdownTransferTicksMax not found in packages/server/src/agent/agent.ts');
  return Number(match[1]) * agentLimits.tickMsMax;
}

/** The workspaces a release ships (not private), as `packages/<name>`, in the root's order. */
export function shippedWorkspaces(): string[] {
  const root = JSON.parse(repoFile('package.json')) as { workspaces: string[] };
  return root.workspaces.filter(
    (w) => (JSON.parse(repoFile(join(w, 'package.json'))) as { private?: boolean }).private !== true,
  );
}
