import type { PrimitiveKind } from '@conclave/protocol';
import { counterKind } from './counter.js';
import { electionKind } from './election.js';
import { indexedMapKind } from './indexed-map.js';
import type { KindMachine } from './kind.js';
import { listKind } from './list.js';
import { lockKind } from './lock.js';
import { mapKind } from './map.js';
import { multimapKind } from './multimap.js';
import { semaphoreKind } from './semaphore.js';
import { setKind } from './set.js';
import { valueKind } from './value.js';

/** Every kind's state machine, by the protocol's kind name. */
export const kindMachines: Readonly<Record<PrimitiveKind, KindMachine<unknown>>> = {
  map: mapKind as KindMachine<unknown>,
  set: setKind as KindMachine<unknown>,
  counter: counterKind as KindMachine<unknown>,
  value: valueKind as KindMachine<unknown>,
  lock: lockKind as KindMachine<unknown>,
  election: electionKind as KindMachine<unknown>,
  semaphore: semaphoreKind as KindMachine<unknown>,
  multimap: multimapKind as KindMachine<unknown>,
  list: listKind as KindMachine<unknown>,
  indexedmap: indexedMapKind as KindMachine<unknown>,
};
