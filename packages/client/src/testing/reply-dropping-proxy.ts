import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A loopback TCP proxy in front of one HTTP server that loses answers on demand: once armed
 * with a pattern, the next request whose bytes match it is forwarded whole, and the moment
 * the server starts answering, both connections are cut. The server has handled the
 * request; the client never sees the answer. Deterministic: no timing is involved.
 */
export class ReplyDroppingProxy {
  /** Answers cut so far. */
  dropped = 0;
  private pattern: RegExp | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<ReplyDroppingProxy> {
    let proxy: ReplyDroppingProxy | null = null;
    const server = createServer((client) => proxy?.pipe(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
    proxy = new ReplyDroppingProxy(server, address.port);
    return proxy;
  }

  /** `127.0.0.1:port`, to list as a server. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Cut the answer to the next request matching `pattern` (its request line and headers). */
  dropReplyTo(pattern: RegExp): void {
    this.pattern = pattern;
  }

  private pipe(client: Socket, target: { host: string; port: number }): void {
    const upstream = tcpConnect(target.port, target.host);
    this.sockets.add(client).add(upstream);
    // Set when this connection carried the request whose answer is to be cut.
    let cutting = false;
    client.on('data', (chunk: Buffer) => {
      if (this.pattern?.test(chunk.toString('latin1')) === true) {
        this.pattern = null;
        cutting = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cutting) {
        client.write(chunk);
        return;
      }
      this.dropped += 1;
      client.destroy();
      upstream.destroy();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
