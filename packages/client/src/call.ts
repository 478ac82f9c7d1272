/** Options every call takes: aborting the signal ends the call at once (it rejects with the signal's reason). */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** The signal as an HttpCall field, absent when there is none (exactOptionalPropertyTypes). */
export function signalOf(options: CallOptions): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}
