import { describe, expect, it } from 'vitest';
import { TestNetwork } from './testing/network.js';

describe('smoke', () => {
  it('elects, replicates and applies', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    expect(net.propose('a', 'x=1').ok).toBe(true);
    net.tickAll(1);
    for (const id of ['a', 'b', 'c']) expect(net.commands(id)).toEqual(['x=1']);
  });
  it('elects by timeout', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.tickAll(30);
    expect(net.leaders().length).toBe(1);
  });
});
