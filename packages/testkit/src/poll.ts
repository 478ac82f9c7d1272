/**
 * Poll `check` until it returns a value other than undefined, or fail after `timeoutMs`
 * naming `what` and the last reason. A throwing check counts as "not yet" (a server still
 * starting refuses connections); `giveUp` throws when waiting longer cannot help.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs: number; what: string; giveUp?: () => void },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'never checked';
  for (;;) {
    options.giveUp?.();
    try {
      const value = await check();
      if (value !== undefined) return value;
      last = 'condition not met';
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what} (last: ${last})`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}
