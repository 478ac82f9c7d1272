import { createServer, type Server } from 'node:net';

const loopback = '127.0.0.1';
const portsMax = 64;

/**
 * `count` distinct loopback ports the kernel handed out just now: all are held open until
 * every one is bound, so none is handed out twice, then released for the servers to bind.
 */
export async function freePorts(count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1 || count > portsMax) {
    throw new Error(`count must be an integer in [1, ${portsMax}], got ${count}`);
  }
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, loopback, () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('listen(0) gave no port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
