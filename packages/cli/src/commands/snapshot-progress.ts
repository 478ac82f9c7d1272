import type { CliIo } from './io.js';

/** Archives smaller than this finish too fast for a progress bar to help. */
export const progressBytesMin = 8 * 1024 * 1024;
const barWidth = 30;
/** Redraws at most this often, so a fast transfer does not flood the terminal. */
const redrawIntervalMs = 100;

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal and the transfer
 * is large (or of unknown size, once it has grown large). `total` null: the size is unknown.
 */
export function progressBar(io: CliIo, options: { what: string; total: number | null }) {
  const tty = 'isTTY' in io.stderr && io.stderr.isTTY === true;
  let lastDrawMs = 0;
  let drawn = false;
  const draw = (done: number) => {
    const text =
      options.total === null || options.total === 0
        ? `${options.what} ${mib(done)}`
        : `${options.what} [${'#'.repeat(Math.round((barWidth * done) / options.total)).padEnd(barWidth, '.')}] ${Math.floor(
            (100 * done) / options.total,
          )}% ${mib(done)}`;
    io.stderr.write(`\r${text}`);
    drawn = true;
  };
  return {
    update(done: number): void {
      if (!tty || Math.max(done, options.total ?? 0) < progressBytesMin) return;
      const now = Date.now();
      if (now - lastDrawMs < redrawIntervalMs) return;
      lastDrawMs = now;
      draw(done);
    },
    finish(done: number): void {
      if (!drawn) return;
      draw(done);
      io.stderr.write('\n');
    },
  };
}
