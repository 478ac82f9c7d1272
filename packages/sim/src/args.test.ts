import { describe, expect, it } from 'vitest';
import { parseCli, parseSeeds } from './args.js';
import { allFaultKinds, parseFaultKinds } from './faults.js';

describe('CLI arguments', () => {
  it('parses seed ranges and lists', () => {
    expect(parseSeeds('3')).toEqual([3]);
    expect(parseSeeds('1-4')).toEqual([1, 2, 3, 4]);
    expect(parseSeeds('9,2-3, 7')).toEqual([9, 2, 3, 7]);
    expect(() => parseSeeds('5-1')).toThrow(RangeError);
    expect(() => parseSeeds('x')).toThrow(RangeError);
  });

  it('parses fault kinds', () => {
    expect(parseFaultKinds('all')).toEqual(allFaultKinds);
    expect(parseFaultKinds('none')).toEqual([]);
    expect(parseFaultKinds('crash,net,crash')).toEqual(['crash', 'net']);
    expect(() => parseFaultKinds('meteor')).toThrow(RangeError);
  });

  it('parses a full command line, with --seed overriding --seeds', () => {
    const options = parseCli([
      '--seeds',
      '1-3',
      '--seed',
      '17',
      '--nodes',
      '3',
      '--faults',
      'net,torn',
      '--trace',
    ]);
    expect(options).toMatchObject({ seeds: [17], nodes: 3, faults: ['net', 'torn'], trace: true });
    expect(parseCli(['--help'])).toBeNull();
    expect(() => parseCli(['--nodes', '4'])).toThrow(RangeError);
    expect(() => parseCli(['--bogus'])).toThrow();
  });
});
