/** What a leader's status says about each member's contact: sinceHeardTicks. */
import { describe, expect, it } from 'vitest';
import { TestNetwork } from '../testing/network.js';

const three = ['a', 'b', 'c'];

describe('status().progress sinceHeardTicks', () => {
  it('is null for a member a new leader has not heard from, whatever grace CheckQuorum gives it', () => {
    const net = new TestNetwork({ voters: three });
    net.isolate('c');
    net.elect('a');
    net.tickAll(3);
    const progress = net.raw('a').status().progress;
    expect(progress?.get('b')?.sinceHeardTicks).toBe(0);
    expect(progress?.get('c')?.sinceHeardTicks).toBeNull();
  });

  it('counts the ticks since a member last answered, across the resets of recentActive', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.cutLink({ from: 'c', to: 'a' });
    // Twelve ticks: past the election timeout (10), when recentActive is cleared for all.
    net.tickAll(12);
    const progress = net.raw('a').status().progress;
    expect(progress?.get('c')?.sinceHeardTicks).toBe(12);
    // b answered the heartbeat of the last tick.
    expect(progress?.get('b')?.sinceHeardTicks).toBe(0);
    expect(net.raw('a').status().role).toBe('leader');
  });
});
