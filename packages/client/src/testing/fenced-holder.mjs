/**
 * A lock holder run as its own process by the fencing test (sdk/faults.e2e.test.ts), so
 * that the test can freeze it (SIGSTOP) as a long GC pause or a frozen VM would. It takes
 * the lock, says its fence, and writes to the guarded resource with that fence each time
 * it reads the line `write` on stdin, as a holder that does not know it was paused would.
 * It speaks one JSON object a line on stdout. Runs the built SDK (`npm test` builds first).
 *
 * argv: <lock name> <resource URL> <server>...
 */
import { createInterface } from 'node:readline';
import { connect } from '@conclave/client';

const [lockName, resourceUrl, ...servers] = process.argv.slice(2);
if (lockName === undefined || resourceUrl === undefined || servers.length === 0) {
  throw new Error('usage: fenced-holder.mjs <lock name> <resource URL> <server>...');
}

function say(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const cv = connect({ servers, sessionTtlMs: 10_000 });
const lock = await cv.lock(lockName).acquire();
lock.on('lost', (error) => say({ event: 'lost', code: error.code }));
say({ event: 'acquired', fence: lock.fence, session: lock.session });

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'write') {
    try {
      const response = await fetch(`${resourceUrl}/write?fence=${lock.fence}&writer=holder`, {
        method: 'POST',
      });
      say({ event: 'wrote', status: response.status });
    } catch (error) {
      say({ event: 'wrote', status: 0, error: String(error?.cause ?? error) });
    }
  } else if (line === 'exit') {
    break;
  }
}
// The session is long gone (that is the test): nothing to release.
process.exit(0);
