import type { ConclaveService, KvEntry, Read, ReadMeta, SessionEntry } from '../../service/types.js';

type Method = keyof ConclaveService;
type Args<M extends Method> = Parameters<ConclaveService[M]>;

/** One call the API made, with the exact arguments. */
export type ServiceCall = { [M in Method]: { readonly method: M; readonly args: Args<M> } }[Method];

/**
 * A ConclaveService for API tests: it records every call and answers with what the test
 * configured. A method the test did not configure throws, so an unexpected call fails the
 * test with a 500 instead of passing silently.
 */
export class RecordingService implements ConclaveService {
  readonly calls: ServiceCall[] = [];
  private readonly answers: Partial<ConclaveService>;

  constructor(answers: Partial<ConclaveService> = {}) {
    this.answers = { ...answers };
  }

  /** Configure (or replace) how one method answers. */
  answer<M extends Method>(method: M, implementation: ConclaveService[M]): this {
    (this.answers as Record<Method, unknown>)[method] = implementation;
    return this;
  }

  /** The first argument of every call to `method`, in order. */
  callsOf<M extends Method>(method: M): Args<M>[0][] {
    return this.calls.filter((call) => call.method === method).map((call) => call.args[0] as Args<M>[0]);
  }

  private invoke<M extends Method>(method: M, args: Args<M>): ReturnType<ConclaveService[M]> {
    this.calls.push({ method, args } as ServiceCall);
    const implementation = this.answers[method] as
      | ((...a: Args<M>) => ReturnType<ConclaveService[M]>)
      | undefined;
    if (implementation === undefined) throw new Error(`RecordingService: no answer configured for ${method}`);
    return implementation(...args);
  }

  kvGet(...args: Args<'kvGet'>) {
    return this.invoke('kvGet', args);
  }
  kvList(...args: Args<'kvList'>) {
    return this.invoke('kvList', args);
  }
  kvKeys(...args: Args<'kvKeys'>) {
    return this.invoke('kvKeys', args);
  }
  kvPut(...args: Args<'kvPut'>) {
    return this.invoke('kvPut', args);
  }
  kvDelete(...args: Args<'kvDelete'>) {
    return this.invoke('kvDelete', args);
  }
  txn(...args: Args<'txn'>) {
    return this.invoke('txn', args);
  }
  sessionCreate(...args: Args<'sessionCreate'>) {
    return this.invoke('sessionCreate', args);
  }
  sessionDestroy(...args: Args<'sessionDestroy'>) {
    return this.invoke('sessionDestroy', args);
  }
  sessionRenew(...args: Args<'sessionRenew'>) {
    return this.invoke('sessionRenew', args);
  }
  sessionInfo(...args: Args<'sessionInfo'>) {
    return this.invoke('sessionInfo', args);
  }
  sessionList(...args: Args<'sessionList'>) {
    return this.invoke('sessionList', args);
  }
  primitiveWrite(...args: Args<'primitiveWrite'>) {
    return this.invoke('primitiveWrite', args);
  }
  primitiveEvents(...args: Args<'primitiveEvents'>) {
    return this.invoke('primitiveEvents', args);
  }
  primitiveRead(...args: Args<'primitiveRead'>) {
    return this.invoke('primitiveRead', args);
  }
  leaderAddress(...args: Args<'leaderAddress'>) {
    return this.invoke('leaderAddress', args);
  }
  peers(...args: Args<'peers'>) {
    return this.invoke('peers', args);
  }
  raftConfiguration(...args: Args<'raftConfiguration'>) {
    return this.invoke('raftConfiguration', args);
  }
  groupCount(...args: Args<'groupCount'>) {
    return this.invoke('groupCount', args);
  }
}

export const defaultMeta: ReadMeta = {
  index: 42,
  knownLeader: true,
  lastContactMs: 0,
  consistency: 'default',
};

/** A read answer with test metadata (index 42, leader known) unless overridden. */
export function readOf<T>(value: T, meta: Partial<ReadMeta> = {}): Read<T> {
  return { value, meta: { ...defaultMeta, ...meta } };
}

export function kvEntry(fields: Partial<KvEntry> & { key: string }): KvEntry {
  return {
    value: new Uint8Array(0),
    flags: 0,
    createIndex: 1,
    modifyIndex: 1,
    lockIndex: 0,
    session: null,
    ...fields,
  };
}

export function sessionEntry(fields: Partial<SessionEntry> & { id: string }): SessionEntry {
  return {
    name: '',
    node: 'node-1',
    ttlSeconds: 0,
    behavior: 'release',
    lockDelayMs: 15_000,
    createIndex: 7,
    modifyIndex: 7,
    ...fields,
  };
}
