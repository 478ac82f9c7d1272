/**
 * Why a server was removed, carried in the RemoveNode change's context so that every server
 * applying it can tell an operator later (`operator status`, autopilot health). JSON, so it
 * never parses as a member context (MessagePack with addresses) by mistake.
 */

/** Longest reason kept (characters); the context must stay within the core's context bound. */
export const removalReasonLengthMax = 200;

export function encodeRemovalContext(reason: string): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ removal: 1, reason: reason.slice(0, removalReasonLengthMax) }),
  );
}

/** The reason a removal's context gives, or null when it carries none (an older server's). */
export function decodeRemovalReason(context: Uint8Array | undefined): string | null {
  if (context === undefined || context.byteLength === 0) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(context));
    if (typeof value === 'object' && value !== null && 'removal' in value && 'reason' in value) {
      return typeof value.reason === 'string' ? value.reason.slice(0, removalReasonLengthMax) : null;
    }
  } catch {
    // Not a removal context: a reason is advisory, applying the change never depends on it.
  }
  return null;
}
