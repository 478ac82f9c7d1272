import { setTimeout as delay } from 'node:timers/promises';
import { type Conclave, ConclaveClientError, type ElectionTerm } from '@conclave/client';
import { ConclaveError } from '@conclave/protocol';
import type { Command } from 'commander';
import {
  type CliContext,
  parseDurationMs,
  parseNatural,
  printJson,
  reportRefusal,
  runWithConclave,
  type ServerFlags,
  serverOptions,
  usageError,
} from './common.js';
import { table } from './format.js';
import { commandWords, type Holding, releaseQuietly, runHolding } from './hold-command.js';
import { type CliIo, type ExitCode, exitCodes } from './io.js';
import { sessionName } from './lock-fenced.js';

/** The pause before following the term again after a failed read, ms. */
const termRetryMs = 1_000;

interface EnterFlags extends ServerFlags {
  readonly timeout?: string;
}

interface WatchFlags extends ServerFlags {
  readonly count?: string;
}

/**
 * `election enter|watch|term|evict`: the leader election primitive. `enter` stands a
 * candidate as `etcdctl elect` campaigns: it prints each new term until interrupted, then
 * withdraws; given a command, it runs it while the candidate leads, as `lock acquire` runs
 * one under a lock. `watch` prints each new term as `etcdctl elect --listen` does.
 */
export function registerElection(election: Command, ctx: CliContext): void {
  election.description('stand in, watch and read leader elections; run a command while leading');

  const enter = election
    .command('enter')
    .description(
      'stand <candidate> in the election and print each new term until interrupted (then withdraw); ' +
        'with a command after --, run it once the candidate leads (the term in CONCLAVE_TERM), and withdraw when it exits',
    )
    .argument('<name>', 'the election')
    .argument('<candidate>', 'the candidate id, unique in the election')
    .argument('[command...]', 'after --: the program and its arguments, passed as they are (no shell)')
    .option(
      '--timeout <duration>',
      'with a command: give up (exit 1) if not leading within this long, e.g. 30s (default: wait)',
    );
  serverOptions(enter, { json: true }).action(
    (name: string, candidate: string, words: string[], flags: EnterFlags) =>
      runWithConclave(
        ctx,
        flags,
        async (cv) => {
          if (words.length === 0) {
            if (flags.timeout !== undefined) throw usageError('--timeout needs a command to run');
            return stand({ io: ctx.io, cv, name, candidate, json: flags.json === true });
          }
          if (flags.json === true) throw usageError('--json does not apply with a command');
          const command = commandWords(words);
          const timeoutMs = parseDurationMs(flags.timeout, '--timeout');
          return runHolding(ctx.io, {
            command,
            what: `the leadership of election ${name}`,
            timeout: flags.timeout,
            acquire: (signal) => lead({ io: ctx.io, cv, name, candidate, timeoutMs, signal }),
          });
        },
        { sessionName: sessionName(`election enter ${name} ${candidate}`) },
      ),
  );

  const watch = election
    .command('watch')
    .description('print the election now and at each new term (a change of leader), until interrupted')
    .argument('<name>', 'the election')
    .option('--count <n>', 'stop after n new terms (the first print is not one)');
  serverOptions(watch, { json: true }).action((name: string, flags: WatchFlags) =>
    runWithConclave(ctx, flags, async (cv) => {
      const changesMax = parseNatural(flags.count, '--count');
      if (changesMax === 0) throw usageError('--count must be at least 1');
      const { io } = ctx;
      return untilInterrupted(io, async (signal) => {
        let last: number | null = null;
        let changes = 0;
        for await (const term of cv.election(name).watch({ signal })) {
          if (term.term === last) continue;
          io.stdout.write(termLine({ name, term, json: flags.json === true }));
          if (last !== null) changes += 1;
          last = term.term;
          if (changesMax !== undefined && changes >= changesMax) break;
        }
        return exitCodes.ok;
      });
    }),
  );

  const term = election
    .command('term')
    .description('print the term, the leader and the candidates in line')
    .argument('<name>', 'the election');
  serverOptions(term, { json: true }).action((name: string, flags: ServerFlags) =>
    runWithConclave(ctx, flags, async (cv) => {
      const t = await cv.election(name).term();
      if (flags.json === true) printJson(ctx.io, { name, ...t });
      else {
        ctx.io.stdout.write(
          table([
            ['Election', name],
            ['Term', String(t.term)],
            ['Leader', t.leader ?? '-'],
            ['Candidates', t.candidates.length === 0 ? '-' : t.candidates.join(', ')],
          ]),
        );
      }
      return exitCodes.ok;
    }),
  );

  const evict = election
    .command('evict')
    .description('take <candidate> out of line, whichever session stands it (the next one leads if it led)')
    .argument('<name>', 'the election')
    .argument('<candidate>', 'the candidate id');
  serverOptions(evict, { json: true }).action((name: string, candidate: string, flags: ServerFlags) =>
    runWithConclave(ctx, flags, async (cv) => {
      const t = await cv.election(name).evict(candidate, { session: false });
      if (flags.json === true) printJson(ctx.io, { name, ...t });
      else {
        ctx.io.stdout.write(`Success! Evicted ${candidate} from election ${name}\n`);
        ctx.io.stdout.write(termLine({ name, term: t, json: false }));
      }
      return exitCodes.ok;
    }),
  );
}

/** One term as a line: `Term 12: c1 leads` for people, a JSON object for machines. */
function termLine(options: { name: string; term: ElectionTerm; json: boolean; self?: string }): string {
  const { name, term, json, self } = options;
  if (json) return `${JSON.stringify({ name, ...term })}\n`;
  if (term.leader === null) return `Term ${term.term}: no leader\n`;
  return `Term ${term.term}: ${term.leader} leads${term.leader === self ? ' (this candidate)' : ''}\n`;
}

/** Run `body` with a signal that SIGINT or SIGTERM abort. */
async function untilInterrupted(
  io: CliIo,
  body: (signal: AbortSignal) => Promise<ExitCode>,
): Promise<ExitCode> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  io.signals.on('SIGINT', onSignal);
  io.signals.on('SIGTERM', onSignal);
  try {
    return await body(stop.signal);
  } catch (error) {
    if (stop.signal.aborted && !(error instanceof ConclaveError)) return exitCodes.ok;
    throw error;
  } finally {
    io.signals.off('SIGINT', onSignal);
    io.signals.off('SIGTERM', onSignal);
  }
}

/** Why a candidacy ended other than by the command: its session's end, as the SDK says. */
function candidacyEnd(reason: unknown): ConclaveError {
  return reason instanceof ConclaveError
    ? reason
    : new ConclaveClientError({ code: 'SESSION_EXPIRED', message: String(reason) });
}

/** `election enter` without a command: stand, print each new term, withdraw when interrupted. */
async function stand(options: {
  io: CliIo;
  cv: Conclave;
  name: string;
  candidate: string;
  json: boolean;
}): Promise<ExitCode> {
  const { io, cv, name, candidate, json } = options;
  return untilInterrupted(io, async (stop) => {
    const election = cv.election(name);
    const candidacy = await election.enter(candidate, { signal: stop });
    if (!json) io.stdout.write(`Entered election ${name} as candidate ${candidate}\n`);
    let last: number | null = null;
    for await (const term of election.watch({ signal: AbortSignal.any([stop, candidacy.signal]) })) {
      if (!term.candidates.includes(candidate)) {
        return reportRefusal(io, {
          code: 'NOT_A_CANDIDATE',
          message: `Candidate ${candidate} no longer stands in election ${name}: it was evicted`,
        });
      }
      if (term.term !== last) io.stdout.write(termLine({ name, term, json, self: candidate }));
      last = term.term;
    }
    if (!stop.aborted) throw candidacyEnd(candidacy.signal.reason);
    await releaseQuietly(io, {
      what: `candidate ${candidate} of election ${name}`,
      release: () => candidacy.withdraw(),
      lost: () => candidacy.lost,
    });
    return exitCodes.ok;
  });
}

/**
 * `election enter` with a command: stand, wait to lead (bounded by `timeoutMs`), then hold
 * the leadership for the command. It is lost when another candidate leads (a new term:
 * anointed, or this one evicted) or the session ends.
 */
async function lead(options: {
  io: CliIo;
  cv: Conclave;
  name: string;
  candidate: string;
  timeoutMs: number | undefined;
  signal: AbortSignal;
}): Promise<Holding | null> {
  const { io, cv, name, candidate, timeoutMs, signal } = options;
  const election = cv.election(name);
  const candidacy = await election.enter(candidate, { signal });
  const timeout = timeoutMs === undefined ? null : AbortSignal.timeout(timeoutMs);
  const waiting = AbortSignal.any([signal, candidacy.signal, ...(timeout === null ? [] : [timeout])]);
  let led: ElectionTerm | null = null;
  let told: number | null = null;
  try {
    for await (const term of election.watch({ signal: waiting })) {
      if (!term.candidates.includes(candidate)) {
        throw new ConclaveClientError({
          code: 'NOT_A_CANDIDATE',
          message: `candidate ${candidate} was evicted from election ${name} before it led`,
        });
      }
      if (term.leader === candidate) {
        led = term;
        break;
      }
      if (term.term !== told) {
        io.stderr.write(
          `Waiting to lead election ${name}: ${term.leader ?? 'nobody'} leads (term ${term.term})\n`,
        );
      }
      told = term.term;
    }
  } finally {
    if (led === null && !candidacy.lost) await candidacy.withdraw().catch(() => undefined);
  }
  if (led === null) {
    signal.throwIfAborted();
    if (timeout?.aborted === true) return null;
    throw candidacyEnd(candidacy.signal.reason);
  }
  const myTerm = led.term;
  const stop = new AbortController();
  const lost = new AbortController();
  const lose = (reason: unknown) => {
    if (!stop.signal.aborted) lost.abort(reason);
  };
  candidacy.signal.addEventListener('abort', () => lose(candidacy.signal.reason), { once: true });
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const term of election.watch({ signal: stop.signal })) {
          if (term.term !== myTerm) {
            const now = term.leader === null ? 'no candidate leads' : `${term.leader} leads`;
            return lose(new Error(`${now} election ${name} now (term ${term.term})`));
          }
        }
      } catch (error) {
        if (!(error instanceof ConclaveError)) throw error;
        // A read that failed after the retries: the session's renewal decides whether the
        // leadership is lost; follow the term again after a pause.
        await delay(termRetryMs, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    }
  })().catch((error: unknown) => lose(error));
  return {
    env: {
      CONCLAVE_ELECTION: name,
      CONCLAVE_CANDIDATE: candidate,
      CONCLAVE_TERM: String(myTerm),
      CONCLAVE_FENCE: String(myTerm),
      CONCLAVE_SESSION: candidacy.session,
    },
    lost: lost.signal,
    async release() {
      stop.abort();
      await releaseQuietly(io, {
        what: `candidate ${candidate} of election ${name}`,
        release: () => candidacy.withdraw(),
        lost: () => lost.signal.aborted || candidacy.lost,
      });
    },
  };
}
