import { describe, expect, it } from 'vitest';
import { parseGoDuration } from './duration.js';

describe('parseGoDuration (Go time.ParseDuration)', () => {
  it.each([
    ['0', 0],
    ['10s', 10e9],
    ['5m', 300e9],
    ['100ms', 100e6],
    ['1h30m', 5400e9],
    ['1.5s', 1.5e9],
    ['.5s', 0.5e9],
    ['1.s', 1e9],
    ['-2s', -2e9],
    ['+3ms', 3e6],
    ['7us', 7e3],
    ['7\u00b5s', 7e3],
    ['7\u03bcs', 7e3],
    ['20ns', 20],
    ['0s', 0],
  ])('reads %s as %d ns', (text, ns) => {
    expect(parseGoDuration(text)).toBe(ns);
  });

  it.each([
    '',
    '10', // a bare number other than 0 has no unit, an error in Go
    '-',
    's',
    '.s',
    '10x',
    '1d',
    '10 s',
    '5m10',
    '1e3s',
    '3000000h', // overflows Go's int64 nanoseconds
  ])('refuses %j', (text) => {
    expect(parseGoDuration(text)).toBeNull();
  });
});
