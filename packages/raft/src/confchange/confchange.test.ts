import { describe, expect, it } from 'vitest';
import { RaftErrorCode, RaftInvariantError } from '../errors.js';
import { type ConfChange, ConfChangeType, type ConfState } from '../types.js';
import {
  applyConfChange,
  confChangeContextBytesMax,
  decodeConfChange,
  encodeConfChange,
  isValidNodeId,
  nodeIdBytesMax,
  validateConfChange,
} from './confchange.js';

const conf: ConfState = { voters: ['a', 'b', 'c'], learners: ['l'] };

describe('ConfChange encoding', () => {
  it('round-trips every type and a variety of ids', () => {
    for (const type of Object.values(ConfChangeType)) {
      for (const nodeId of ['a', 'node-1', 'x.y:z@w_9', 'n'.repeat(nodeIdBytesMax)]) {
        const change: ConfChange = { type, nodeId };
        expect(decodeConfChange(encodeConfChange(change))).toEqual(change);
      }
    }
  });

  it('encodes as one type byte then the id', () => {
    expect(Array.from(encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'ab' }))).toEqual([
      3, 97, 98,
    ]);
  });

  it('refuses to encode an invalid id', () => {
    expect(() => encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: '' })).toThrow(RaftInvariantError);
    expect(() => encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: 'a b' })).toThrow(
      RaftInvariantError,
    );
  });

  it('refuses to decode an unknown type byte, an empty buffer or an invalid id', () => {
    expect(() => decodeConfChange(new Uint8Array([9, 97]))).toThrow(RaftInvariantError);
    expect(() => decodeConfChange(new Uint8Array([]))).toThrow(RaftInvariantError);
    expect(() => decodeConfChange(new Uint8Array([1]))).toThrow(RaftInvariantError);
    expect(() => decodeConfChange(new Uint8Array([1, 32]))).toThrow(RaftInvariantError);
  });

  it('round-trips a context, empty or full-size, next to every type and id length', () => {
    for (const type of Object.values(ConfChangeType)) {
      for (const nodeId of ['a', 'n'.repeat(nodeIdBytesMax)]) {
        for (const size of [0, 1, 37, confChangeContextBytesMax]) {
          const context = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff);
          const change: ConfChange = { type, nodeId, context };
          expect(decodeConfChange(encodeConfChange(change))).toEqual(change);
        }
      }
    }
  });

  it('flags a context on the type byte and prefixes the id with its length', () => {
    const change: ConfChange = {
      type: ConfChangeType.AddLearner,
      nodeId: 'ab',
      context: Uint8Array.of(7, 8),
    };
    expect(Array.from(encodeConfChange(change))).toEqual([0x82, 2, 97, 98, 7, 8]);
    // A change without one is still byte-identical to what older builds wrote.
    expect(Array.from(encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'ab' }))).toEqual([
      2, 97, 98,
    ]);
  });

  it('decodes a context into its own memory', () => {
    const encoded = encodeConfChange({
      type: ConfChangeType.AddVoter,
      nodeId: 'a',
      context: Uint8Array.of(1),
    });
    const decoded = decodeConfChange(encoded);
    encoded[3] = 9;
    expect(decoded.context).toEqual(Uint8Array.of(1));
  });

  it('refuses a context over the limit, and a flagged change cut inside its id', () => {
    const context = new Uint8Array(confChangeContextBytesMax + 1);
    expect(() => encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: 'a', context })).toThrow(
      RaftInvariantError,
    );
    expect(validateConfChange(conf, { type: ConfChangeType.AddLearner, nodeId: 'd', context })?.code).toBe(
      RaftErrorCode.ConfChangeInvalid,
    );
    expect(() => decodeConfChange(Uint8Array.of(0x81, 5, 97))).toThrow(RaftInvariantError);
  });

  it('isValidNodeId bounds length and characters', () => {
    expect(isValidNodeId('a')).toBe(true);
    expect(isValidNodeId('n'.repeat(nodeIdBytesMax))).toBe(true);
    expect(isValidNodeId('n'.repeat(nodeIdBytesMax + 1))).toBe(false);
    expect(isValidNodeId('')).toBe(false);
    expect(isValidNodeId('é')).toBe(false);
    expect(isValidNodeId('a/b')).toBe(false);
  });
});

describe('validateConfChange', () => {
  const invalid = (change: ConfChange, on: ConfState = conf) => validateConfChange(on, change)?.code;

  it('accepts each meaningful change', () => {
    expect(validateConfChange(conf, { type: ConfChangeType.AddVoter, nodeId: 'd' })).toBeNull();
    expect(validateConfChange(conf, { type: ConfChangeType.AddVoter, nodeId: 'l' })).toBeNull();
    expect(validateConfChange(conf, { type: ConfChangeType.AddLearner, nodeId: 'd' })).toBeNull();
    expect(validateConfChange(conf, { type: ConfChangeType.AddLearner, nodeId: 'a' })).toBeNull();
    expect(validateConfChange(conf, { type: ConfChangeType.RemoveNode, nodeId: 'a' })).toBeNull();
    expect(validateConfChange(conf, { type: ConfChangeType.RemoveNode, nodeId: 'l' })).toBeNull();
  });

  it('refuses changes that would do nothing', () => {
    expect(invalid({ type: ConfChangeType.AddVoter, nodeId: 'a' })).toBe(RaftErrorCode.ConfChangeInvalid);
    expect(invalid({ type: ConfChangeType.AddLearner, nodeId: 'l' })).toBe(RaftErrorCode.ConfChangeInvalid);
    expect(invalid({ type: ConfChangeType.RemoveNode, nodeId: 'zz' })).toBe(RaftErrorCode.ConfChangeInvalid);
  });

  it('refuses to remove or demote the only voter', () => {
    const one: ConfState = { voters: ['a'], learners: [] };
    expect(invalid({ type: ConfChangeType.RemoveNode, nodeId: 'a' }, one)).toBe(
      RaftErrorCode.ConfChangeInvalid,
    );
    expect(invalid({ type: ConfChangeType.AddLearner, nodeId: 'a' }, one)).toBe(
      RaftErrorCode.ConfChangeInvalid,
    );
  });

  it('refuses an invalid node id', () => {
    expect(invalid({ type: ConfChangeType.AddVoter, nodeId: 'has space' })).toBe(
      RaftErrorCode.ConfChangeInvalid,
    );
  });
});

describe('applyConfChange', () => {
  it('adds, promotes, demotes and removes', () => {
    expect(applyConfChange(conf, { type: ConfChangeType.AddVoter, nodeId: 'd' })).toEqual({
      voters: ['a', 'b', 'c', 'd'],
      learners: ['l'],
    });
    expect(applyConfChange(conf, { type: ConfChangeType.AddVoter, nodeId: 'l' })).toEqual({
      voters: ['a', 'b', 'c', 'l'],
      learners: [],
    });
    expect(applyConfChange(conf, { type: ConfChangeType.AddLearner, nodeId: 'b' })).toEqual({
      voters: ['a', 'c'],
      learners: ['l', 'b'],
    });
    expect(applyConfChange(conf, { type: ConfChangeType.RemoveNode, nodeId: 'l' })).toEqual({
      voters: ['a', 'b', 'c'],
      learners: [],
    });
  });

  it('ignores a change that would leave no voter, so every node reaches the same membership', () => {
    const one: ConfState = { voters: ['a'], learners: [] };
    expect(applyConfChange(one, { type: ConfChangeType.RemoveNode, nodeId: 'a' })).toBe(one);
  });
});
