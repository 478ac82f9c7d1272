import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

/**
 * The commands run under a lock (or permits, or a leadership) in tests are node processes
 * that connect to this server and send their name: the test knows exactly when each one
 * runs, and ends it (exit code 7) by closing its connection. No sleeps: every wait is on
 * an event or a bounded poll.
 */
export class Rendezvous {
  private readonly sockets = new Map<string, Socket>();
  private readonly waiters = new Map<string, (socket: Socket) => void>();
  readonly server: Server = createServer((socket) => {
    socket.once('data', (data) => {
      const name = data.toString();
      this.sockets.set(name, socket);
      this.waiters.get(name)?.(socket);
    });
  });

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
  }

  /**
   * The script of a node process named `name`: it prints its CONCLAVE_* variables as one
   * JSON line, connects, and exits 7 when the connection closes.
   */
  script(name: string): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    return (
      `console.log(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k])=>k.startsWith('CONCLAVE_')))));` +
      `require('net').connect(${address.port},'127.0.0.1',function(){this.write('${name}')})` +
      `.on('close',function(){process.exit(7)}).on('error',function(){process.exit(9)})`
    );
  }

  /** A shell command line that runs a node process named `name` (see script). */
  command(name: string): string {
    return `"${process.execPath}" -e "${this.script(name)}"`;
  }

  /** The same process as program and arguments, for commands that run no shell. */
  argv(name: string): string[] {
    return [process.execPath, '-e', this.script(name)];
  }

  isRunning(name: string): boolean {
    return this.sockets.has(name);
  }

  connected(name: string): Promise<Socket> {
    const socket = this.sockets.get(name);
    if (socket !== undefined) return Promise.resolve(socket);
    return new Promise((resolve) => this.waiters.set(name, resolve));
  }

  /** End the named command (it exits 7 when its connection closes). */
  finish(name: string): void {
    this.sockets.get(name)?.end();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets.values()) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
