import { describe, expect, it } from 'vitest';
import { decodeCommand, encodeCommand, type KvCommand, KvDecodeError, KvStateMachine } from './kv.js';

const id = (seq: number, clientId = 'c1') => ({ clientId, seq });

describe('KV commands', () => {
  it('round-trips every command through bytes', () => {
    const commands: KvCommand[] = [
      { op: 'put', key: 'k', value: 'v', requestId: id(1) },
      { op: 'cas', key: 'k', expected: null, value: 'w', requestId: id(2) },
      { op: 'cas', key: 'k', expected: 'v', value: 'w', requestId: id(3) },
      { op: 'get', key: 'k', requestId: id(4) },
    ];
    for (const command of commands) expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it('encodes equal commands to equal bytes whatever their field order', () => {
    const a: KvCommand = { op: 'put', key: 'k', value: 'v', requestId: id(1) };
    const b = { requestId: { seq: 1, clientId: 'c1' }, value: 'v', key: 'k', op: 'put' } as const;
    expect(encodeCommand(b)).toEqual(encodeCommand(a));
  });

  it('rejects malformed commands', () => {
    const bad = (text: string) => () => decodeCommand(new TextEncoder().encode(text));
    expect(bad('{"op":"del","key":"k","requestId":{"clientId":"c","seq":1}}')).toThrow(KvDecodeError);
    expect(bad('{"op":"put","key":"k","requestId":{"clientId":"c","seq":1}}')).toThrow(KvDecodeError);
    expect(bad('[]')).toThrow(KvDecodeError);
  });
});

describe('KvStateMachine', () => {
  it('applies put, cas and get', () => {
    const kv = new KvStateMachine();
    expect(kv.apply({ op: 'get', key: 'a', requestId: id(1) })).toEqual({
      kind: 'executed',
      result: { op: 'get', value: null },
    });
    expect(kv.apply({ op: 'cas', key: 'a', expected: null, value: '1', requestId: id(2) }).kind).toBe(
      'executed',
    );
    expect(kv.get('a')).toBe('1');
    expect(kv.apply({ op: 'cas', key: 'a', expected: '0', value: '2', requestId: id(3) })).toEqual({
      kind: 'executed',
      result: { op: 'cas', ok: false, previous: '1' },
    });
    kv.apply({ op: 'put', key: 'a', value: '3', requestId: id(4) });
    expect(kv.get('a')).toBe('3');
  });

  it('executes a retried request once and returns its first result', () => {
    const kv = new KvStateMachine();
    const put: KvCommand = { op: 'put', key: 'a', value: '1', requestId: id(1) };
    expect(kv.apply(put).kind).toBe('executed');
    kv.apply({ op: 'put', key: 'a', value: '2', requestId: id(1, 'c2') });
    expect(kv.apply(put)).toEqual({ kind: 'duplicate', result: { op: 'put' } });
    expect(kv.get('a')).toBe('2');
    kv.apply({ op: 'get', key: 'a', requestId: id(2) });
    expect(kv.apply(put)).toEqual({ kind: 'stale' });
  });

  it('snapshots to canonical bytes and restores the same state, sessions included', () => {
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    a.apply({ op: 'put', key: 'x', value: '1', requestId: id(1, 'p') });
    a.apply({ op: 'put', key: 'y', value: '2', requestId: id(1, 'q') });
    b.apply({ op: 'put', key: 'y', value: '2', requestId: id(1, 'q') });
    b.apply({ op: 'put', key: 'x', value: '1', requestId: id(1, 'p') });
    expect(a.snapshot()).toEqual(b.snapshot());
    const restored = KvStateMachine.restore(a.snapshot());
    expect(restored.snapshot()).toEqual(a.snapshot());
    expect(restored.get('x')).toBe('1');
    expect(restored.apply({ op: 'put', key: 'x', value: '1', requestId: id(1, 'p') }).kind).toBe('duplicate');
    expect(KvStateMachine.restore(new Uint8Array(0)).size).toBe(0);
    expect(() => KvStateMachine.restore(new TextEncoder().encode('{"data":3}'))).toThrow(KvDecodeError);
  });
});
