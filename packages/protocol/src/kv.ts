/**
 * The KV operations one request or one transaction may carry (Consul's TxnKVOp verbs, in
 * kebab case). The server's state machine and every client share this one list.
 */
export const kvVerbs = [
  'set',
  'cas',
  'lock',
  'unlock',
  'get',
  'get-tree',
  'check-index',
  'check-session',
  'check-not-exists',
  'delete',
  'delete-tree',
  'delete-cas',
] as const;

export type KvVerb = (typeof kvVerbs)[number];
