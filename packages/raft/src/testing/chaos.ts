/**
 * A seeded run of a cluster under changing partitions, dropped messages, crashes and
 * proposals. The network's invariant checks run throughout; `onTick` lets a test check
 * more after every tick.
 */
import { createPrng } from '../prng.js';
import type { NodeId } from '../types.js';
import { type NodeOptions, TestNetwork } from './network.js';

export interface ChaosOptions {
  seed: number;
  voters: NodeId[];
  ticks: number;
  node?: NodeOptions;
  /** Chance per tick that a random node crashes and restarts from its storage. */
  restartChance?: number;
  onTick?: (net: TestNetwork, tick: number) => void;
}

export function runChaos(options: ChaosOptions): { net: TestNetwork; proposed: number } {
  const prng = createPrng(options.seed ^ 0x5eed);
  const net = new TestNetwork({
    voters: options.voters,
    seed: options.seed,
    ...(options.node ? { node: options.node } : {}),
  });
  const pick = <T>(list: readonly T[]): T => {
    const item = list[prng.nextInt(list.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  };
  net.filter = () => prng.nextFloat() >= 0.05;
  let proposed = 0;
  for (let tick = 0; tick < options.ticks; tick++) {
    if (tick % 15 === 0) {
      const layout = prng.nextFloat();
      if (layout < 0.4) net.heal();
      else if (layout < 0.7) {
        net.heal();
        net.isolate(pick(options.voters));
      } else {
        const shuffled = [...options.voters];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = prng.nextInt(i + 1);
          const a = shuffled[i];
          const b = shuffled[j];
          if (a === undefined || b === undefined) throw new Error('shuffle out of range');
          shuffled[i] = b;
          shuffled[j] = a;
        }
        const cut = 1 + prng.nextInt(shuffled.length - 1);
        net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      }
    }
    if (prng.nextFloat() < (options.restartChance ?? 0.02)) net.restart(pick(options.voters));
    if (prng.nextFloat() < 0.3) {
      const leaders = net.leaders();
      if (leaders.length > 0) {
        const result = net.raw(pick(leaders)).propose(new TextEncoder().encode(`cmd-${proposed}`));
        if (result.ok) proposed++;
      }
    }
    net.tickAll();
    options.onTick?.(net, tick);
  }
  return { net, proposed };
}
