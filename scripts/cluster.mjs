#!/usr/bin/env node
// Starts a 3-server Conclave cluster on loopback for local use: Raft on 8301-8303, HTTP on
// 8501-8503, data in .conclave/cluster/<id>. Ctrl-C (or SIGTERM) stops all three cleanly;
// starting again resumes from the same data.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}packages/cli/dist/conclave.js`;
const servers = [1, 2, 3].map((i) => ({ id: `s${i}`, raft: 8300 + i, http: 8500 + i }));

const children = servers.map((server) => {
  const join = servers
    .filter((s) => s !== server)
    .map((s) => `${s.id}@127.0.0.1:${s.raft}`)
    .join(',');
  const child = spawn(
    process.execPath,
    [
      cli,
      'agent',
      '--node-id',
      server.id,
      '--data-dir',
      `${root}.conclave/cluster/${server.id}`,
      '--bind',
      `127.0.0.1:${server.raft}`,
      '--http-addr',
      `127.0.0.1:${server.http}`,
      '--bootstrap-expect',
      '3',
      '--join',
      join,
      // info no longer logs every request (those are at debug): leaders, membership and
      // autopilot changes, as readable lines (the output is a pipe, so text is asked for).
      '--log-level',
      process.env.CONCLAVE_LOG_LEVEL ?? 'info',
      '--log-format',
      process.env.CONCLAVE_LOG_FORMAT ?? 'text',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n'))
        if (line.length > 0) process.stdout.write(`[${server.id}] ${line}\n`);
    });
  }
  child.on('exit', (code, signal) => process.stdout.write(`[${server.id}] exited (${signal ?? code})\n`));
  return child;
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  process.stdout.write('stopping the cluster...\n');
  for (const child of children) child.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
let exited = 0;
for (const child of children) {
  child.on('exit', () => {
    exited++;
    if (exited === children.length) process.exit(0);
  });
}
process.stdout.write(
  'Conclave cluster: s1 http://127.0.0.1:8501, s2 http://127.0.0.1:8502, s3 http://127.0.0.1:8503 (Ctrl-C stops it)\n',
);
