import { describe, expect, it } from 'vitest';
import { singleServerPerTest } from '../agent/testing/single-server.js';

const setup = singleServerPerTest();

type App = Awaited<ReturnType<typeof setup>>['app'];

interface StreamEvent {
  id: string | null;
  event: string;
  data: unknown;
}

/** Reads Server-Sent Events from a live socket until `count` arrived, then hangs up. */
async function readEvents(options: {
  url: string;
  count: number;
  lastEventId?: string;
}): Promise<StreamEvent[]> {
  const controller = new AbortController();
  const response = await fetch(options.url, {
    headers: {
      accept: 'text/event-stream',
      ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}),
    },
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: StreamEvent[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = response.body?.getReader();
  if (reader === undefined) throw new Error('no body');
  while (events.length < options.count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end = buffered.indexOf('\n\n');
    while (end >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const fields = new Map(
        block
          .split('\n')
          .filter((line) => !line.startsWith(':') && line.includes(':'))
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trimStart()]),
      );
      if (fields.has('data')) {
        events.push({
          id: fields.get('id') ?? null,
          event: fields.get('event') ?? 'message',
          data: JSON.parse(fields.get('data') ?? 'null'),
        });
      }
      end = buffered.indexOf('\n\n');
    }
  }
  controller.abort();
  return events;
}

async function write(app: App, path: string, body: unknown): Promise<{ version: number }> {
  const answer = await app.inject({
    method: 'POST',
    url: `/v1/primitive/${path}`,
    payload: JSON.stringify(body),
  });
  expect(answer.statusCode).toBe(200);
  return answer.json<{ result: { version: number } }>().result;
}

describe('primitive events as Server-Sent Events', () => {
  it('streams each change with its version as the id, and resumes after the Last-Event-ID without gaps or repeats', async () => {
    const { app } = await setup();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `${address}/v1/primitive/counter/sse/events`;
    const first = await write(app, 'counter/sse/increment', {});
    const streaming = readEvents({ url, count: 3 });
    const second = await write(app, 'counter/sse/increment', {});
    const third = await write(app, 'counter/sse/increment', {});
    const events = await streaming;
    expect(events.map((e) => [e.event, Number(e.id)])).toEqual([
      ['change', first.version],
      ['change', second.version],
      ['change', third.version],
    ]);
    expect(events[2]?.data).toMatchObject({ state: { value: 3 } });
    const fourth = await write(app, 'counter/sse/increment', {});
    const resumed = await readEvents({ url, count: 1, lastEventId: String(third.version) });
    expect(resumed.map((e) => Number(e.id))).toEqual([fourth.version]);
  });

  it('refuses an unknown kind or a bad version before streaming', async () => {
    const { app } = await setup();
    const unknown = await app.inject({
      method: 'GET',
      url: '/v1/primitive/queue/q/events',
      headers: { accept: 'text/event-stream' },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json<{ code: string }>().code).toBe('PRIMITIVE_UNKNOWN');
    const bad = await app.inject({
      method: 'GET',
      url: '/v1/primitive/value/v/events?after=x',
      headers: { accept: 'text/event-stream' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ code: string }>().code).toBe('BAD_REQUEST');
  });
});
