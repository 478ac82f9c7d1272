import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A scripted HTTP server on loopback: answers each request with `handler`, counting them. */
export async function fakeServer(
  handler: (request: IncomingMessage, response: ServerResponse, count: number) => void,
): Promise<{ address: string; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = createServer((request, response) => {
    count += 1;
    handler(request, response, count);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Answer with a Conclave error body. */
export function sendCode(response: ServerResponse, options: { status: number; code: string }): void {
  response.writeHead(options.status, { 'content-type': 'application/json' });
  response.end(
    JSON.stringify({ code: options.code, message: `scripted ${options.code}`, advice: 'scripted advice' }),
  );
}
