import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from '../errors.js';
import { Inflights } from './inflights.js';

describe('Inflights', () => {
  it('refuses a capacity that is not positive', () => {
    expect(() => new Inflights(0)).toThrow(RaftInvariantError);
  });

  it('fills up to its capacity and refuses one more', () => {
    const inflights = new Inflights(3);
    inflights.add(1);
    inflights.add(2);
    expect(inflights.isFull()).toBe(false);
    inflights.add(5);
    expect(inflights.isFull()).toBe(true);
    expect(inflights.size).toBe(3);
    expect(() => inflights.add(6)).toThrow(RaftInvariantError);
  });

  it('requires last indexes to increase', () => {
    const inflights = new Inflights(4);
    inflights.add(3);
    expect(() => inflights.add(3)).toThrow(RaftInvariantError);
    expect(() => inflights.add(2)).toThrow(RaftInvariantError);
  });

  it('freeLE frees every message at or below the index, and nothing above', () => {
    const inflights = new Inflights(4);
    for (const index of [2, 4, 6, 8]) inflights.add(index);
    inflights.freeLE(1);
    expect(inflights.size).toBe(4);
    inflights.freeLE(4);
    expect(inflights.size).toBe(2);
    inflights.freeLE(5);
    expect(inflights.size).toBe(2);
    inflights.freeLE(100);
    expect(inflights.size).toBe(0);
    inflights.freeLE(100);
    expect(inflights.size).toBe(0);
  });

  it('wraps around its ring buffer', () => {
    const inflights = new Inflights(3);
    let next = 1;
    for (let round = 0; round < 10; round++) {
      while (!inflights.isFull()) inflights.add(next++);
      // free the two oldest
      inflights.freeLE(next - 2);
      expect(inflights.size).toBe(1);
    }
    inflights.add(next++);
    inflights.add(next++);
    expect(inflights.isFull()).toBe(true);
    inflights.freeLE(next - 1);
    expect(inflights.size).toBe(0);
  });

  it('freeFirstOne frees only the oldest message, and nothing when empty', () => {
    const inflights = new Inflights(2);
    inflights.freeFirstOne();
    expect(inflights.size).toBe(0);
    inflights.add(3);
    inflights.add(5);
    inflights.freeFirstOne();
    expect(inflights.size).toBe(1);
    inflights.freeLE(4);
    expect(inflights.size).toBe(1);
    inflights.freeLE(5);
    expect(inflights.size).toBe(0);
  });

  it('reset empties the window', () => {
    const inflights = new Inflights(2);
    inflights.add(1);
    inflights.add(2);
    inflights.reset();
    expect(inflights.size).toBe(0);
    inflights.add(1);
    expect(inflights.size).toBe(1);
  });
});
