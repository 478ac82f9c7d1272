/**
 * Everything the benchmark starts or creates (processes, temp dirs, clients) is registered
 * here, and released in reverse order: on success, on an error, and on SIGINT or SIGTERM.
 * Whatever is still registered when the process exits anyway is released synchronously.
 */

export interface Resource {
  readonly name: string;
  /** The normal release: may wait (for a process to exit, a client to close). */
  release(): Promise<void>;
  /** The last resort at process exit, where nothing can be awaited. */
  releaseNow(): void;
}

/** Resources held at once; the benchmark holds a handful. */
const resourcesMax = 64;

export class Cleanup {
  private readonly resources: Resource[] = [];
  private releasing: Promise<string[]> | null = null;

  get size(): number {
    return this.resources.length;
  }

  add(resource: Resource): void {
    if (this.resources.length >= resourcesMax) {
      throw new Error(`more than ${resourcesMax} resources registered for cleanup`);
    }
    this.resources.push(resource);
  }

  /** Release one resource now (and forget it), e.g. a cluster at the end of its phase. */
  async release(resource: Resource): Promise<void> {
    const i = this.resources.indexOf(resource);
    if (i < 0) return;
    this.resources.splice(i, 1);
    await resource.release();
  }

  /**
   * Release everything, newest first. Every resource gets its turn even if one fails; the
   * failures come back as messages, so the caller reports them without masking its own error.
   */
  async releaseAll(): Promise<string[]> {
    // One pass at a time: a second caller (the benchmark's `finally` while a signal's pass
    // runs) waits for the first; returning at once would let the process exit mid-release.
    if (this.releasing !== null) {
      await this.releasing;
      return [];
    }
    this.releasing = this.releaseEach();
    try {
      return await this.releasing;
    } finally {
      this.releasing = null;
    }
  }

  private async releaseEach(): Promise<string[]> {
    const failures: string[] = [];
    for (let resource = this.resources.pop(); resource !== undefined; resource = this.resources.pop()) {
      try {
        await resource.release();
      } catch (error) {
        failures.push(`${resource.name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return failures;
  }

  releaseAllNow(): void {
    for (let resource = this.resources.pop(); resource !== undefined; resource = this.resources.pop()) {
      try {
        resource.releaseNow();
      } catch {
        // At exit nothing can be reported usefully; the other resources still get released.
      }
    }
  }

  /**
   * On SIGINT/SIGTERM: release everything, then exit with 128 + the signal number. At exit:
   * release synchronously whatever is left. Returns the function that removes the handlers.
   */
  installProcessHandlers(options: { log: (line: string) => void }): () => void {
    let handling = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (handling) return;
      handling = true;
      options.log(`bench: ${signal}, stopping every process and removing temp dirs`);
      this.releaseAll().then(
        (failures) => {
          for (const failure of failures) options.log(`bench: cleanup failed: ${failure}`);
          process.exit(signal === 'SIGINT' ? 130 : 143);
        },
        () => process.exit(1),
      );
    };
    // Bound per signal: a listener is not always handed the signal's name.
    const onSigint = () => onSignal('SIGINT');
    const onSigterm = () => onSignal('SIGTERM');
    const onExit = () => this.releaseAllNow();
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    process.on('exit', onExit);
    return () => {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
      process.off('exit', onExit);
    };
  }
}
