import {
  candidateIdCharsMax,
  primitiveKeyCharsMax,
  primitiveTtlMsMax,
  primitiveTtlMsMin,
  primitiveTxnStepsMax,
  primitiveValuesMax,
} from '@conclave/protocol';
import type { Args, ArgsSpec, ArgType } from './kind.js';
import { transactionStepOps } from './transaction.js';

/**
 * Checks an operation's arguments against its spec: every field of the spec is of its type
 * (or absent, if optional) and no other field is present. Returns what is wrong, for a
 * person, or null. The API refuses with it (BAD_REQUEST); the FSM asserts it is null.
 */
export function argsProblem(options: { spec: ArgsSpec; args: unknown }): string | null {
  const { spec, args } = options;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return 'args must be an object';
  for (const field of Object.keys(args)) {
    if (!Object.hasOwn(spec, field)) {
      const known = Object.keys(spec);
      return `args.${field} is not an argument of this operation (it takes ${known.length === 0 ? 'none' : known.join(', ')})`;
    }
  }
  for (const [field, type] of Object.entries(spec)) {
    const value = (args as Args)[field];
    const problem = fieldProblem({ type, value });
    if (problem !== null) return `args.${field} ${problem}`;
  }
  return null;
}

function fieldProblem(options: { type: ArgType; value: unknown }): string | null {
  const optional = options.type.endsWith('?');
  const type = options.type.replace('?', '') as ArgType;
  const { value } = options;
  if (value === undefined || value === null) return optional ? null : 'is required';
  switch (type) {
    case 'key':
      return textProblem({ value, charsMax: primitiveKeyCharsMax });
    case 'id':
      return textProblem({ value, charsMax: candidateIdCharsMax });
    case 'bytes':
      return value instanceof Uint8Array ? null : 'must be bytes (base64 in JSON)';
    case 'bytes[]':
      if (!Array.isArray(value) || !value.every((v) => v instanceof Uint8Array)) {
        return 'must be a list of bytes (base64 strings in JSON)';
      }
      return value.length <= primitiveValuesMax
        ? null
        : `has ${value.length} values, more than ${primitiveValuesMax}`;
    case 'bool':
      return typeof value === 'boolean' ? null : 'must be true or false';
    case 'int':
      return Number.isSafeInteger(value) ? null : 'must be an integer within ±(2^53 - 1)';
    case 'index':
      return Number.isSafeInteger(value) && (value as number) >= 0 ? null : 'must be an integer >= 0';
    case 'steps':
      return stepsProblem(value);
    case 'ttl':
      return Number.isSafeInteger(value) &&
        (value as number) >= primitiveTtlMsMin &&
        (value as number) <= primitiveTtlMsMax
        ? null
        : `must be a whole number of milliseconds in [${primitiveTtlMsMin}, ${primitiveTtlMsMax}]`;
    case 'count':
      return Number.isSafeInteger(value) && (value as number) >= 1 ? null : 'must be an integer >= 1';
    default:
      return `has an unknown type ${type}`;
  }
}

/** What is wrong with a name, key or id, or null: 1 to charsMax characters, no control. */
export function textProblem(options: { value: unknown; charsMax: number }): string | null {
  const { value, charsMax } = options;
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.length > charsMax) return `has ${value.length} characters, more than ${charsMax}`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
  const control = /[\u0000-\u001f\u007f]/.exec(value);
  if (control !== null) return `holds a control character at ${control.index}`;
  return null;
}

/** A map transaction's steps: 1 to primitiveTxnStepsMax of {op, key, value?, ifVersion?}. */
function stepsProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length === 0 || value.length > primitiveTxnStepsMax) {
    return `must be a list of 1 to ${primitiveTxnStepsMax} steps`;
  }
  for (const [position, step] of value.entries()) {
    if (typeof step !== 'object' || step === null || Array.isArray(step))
      return `[${position}] must be an object`;
    const { op, key, value: bytes, ifVersion, ...rest } = step as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined)
      return `[${position}].${extra} is not a field of a step (op, key, value, ifVersion)`;
    if (typeof op !== 'string' || !transactionStepOps.has(op)) {
      return `[${position}].op must be put, insert, update or remove`;
    }
    const keyProblem = textProblem({ value: key, charsMax: primitiveKeyCharsMax });
    if (keyProblem !== null) return `[${position}].key ${keyProblem}`;
    if ((op === 'remove') !== (bytes === undefined)) {
      return `[${position}].value ${op === 'remove' ? 'is not taken by remove' : 'is required'}`;
    }
    if (bytes !== undefined && !(bytes instanceof Uint8Array))
      return `[${position}].value must be bytes (base64 in JSON)`;
    if (ifVersion !== undefined && !(Number.isSafeInteger(ifVersion) && (ifVersion as number) >= 0)) {
      return `[${position}].ifVersion must be an integer >= 0`;
    }
  }
  return null;
}
