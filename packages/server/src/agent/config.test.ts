import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromEnv, configFromFile, hostNodeId, resolveAgentConfig } from './config.js';
import { claimDataDir } from './identity.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('agent configuration', () => {
  it('gives --dev a node id, one expected server and loopback defaults', () => {
    const config = resolveAgentConfig([{ dev: true }]);
    expect(config).toMatchObject({
      nodeId: 'dev',
      dataDir: null,
      bootstrapExpect: 1,
      groups: 8,
      bind: { host: '127.0.0.1', port: 8300 },
      httpAddr: { host: '127.0.0.1', port: 8500 },
    });
  });

  it('lets later sources win: file, then environment, then flags', () => {
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, 'nodeId: from-file\ndataDir: /tmp/x\ngroups: 4\nbootstrapExpect: 1\ntickMs: 30\n');
    const env = configFromEnv({ CONCLAVE_GROUPS: '6', CONCLAVE_NODE_ID: 'from-env' });
    const config = resolveAgentConfig([configFromFile(file), env, { nodeId: 'from-flag' }]);
    expect(config).toMatchObject({ nodeId: 'from-flag', groups: 6, tickMs: 30, dataDir: '/tmp/x' });
  });

  it('reads the log format from a file, the environment or a flag, and refuses others', () => {
    expect(resolveAgentConfig([{ dev: true }]).logFormat).toBeNull();
    const file = join(dir, 'format.json');
    writeFileSync(file, JSON.stringify({ dev: true, logFormat: 'text' }));
    expect(resolveAgentConfig([configFromFile(file)]).logFormat).toBe('text');
    const env = configFromEnv({ CONCLAVE_LOG_FORMAT: 'json' });
    expect(resolveAgentConfig([configFromFile(file), env]).logFormat).toBe('json');
    expect(resolveAgentConfig([{ dev: true }, env, { logFormat: 'text' }]).logFormat).toBe('text');
    expect(() => resolveAgentConfig([{ dev: true, logFormat: 'pretty' }])).toThrow(
      /log-format must be text or json, got pretty \(setting: logFormat\)/,
    );
  });

  it("takes the agent's HTTP address from CONCLAVE_AGENT_HTTP_ADDR, never the CLI's CONCLAVE_HTTP_ADDR", () => {
    const cliOnly = configFromEnv({ CONCLAVE_HTTP_ADDR: '127.0.0.1:9999' });
    expect(cliOnly).toEqual({});
    expect(resolveAgentConfig([{ dev: true }, cliOnly]).httpAddr).toEqual({ host: '127.0.0.1', port: 8500 });
    const agent = configFromEnv({
      CONCLAVE_AGENT_HTTP_ADDR: '127.0.0.1:8600',
      CONCLAVE_HTTP_ADDR: '127.0.0.1:9999',
    });
    expect(resolveAgentConfig([{ dev: true }, agent]).httpAddr).toEqual({ host: '127.0.0.1', port: 8600 });
  });

  it('reads JSON config files and parses join lists', () => {
    const file = join(dir, 'agent.json');
    writeFileSync(
      file,
      JSON.stringify({
        nodeId: 'a',
        dataDir: '/d',
        bootstrapExpect: 3,
        join: ['127.0.0.1:8301', '127.0.0.1:8302'],
      }),
    );
    const config = resolveAgentConfig([configFromFile(file)]);
    expect(config.join).toEqual([
      { nodeId: null, raft: { host: '127.0.0.1', port: 8301 } },
      { nodeId: null, raft: { host: '127.0.0.1', port: 8302 } },
    ]);
    const named = resolveAgentConfig([
      { nodeId: 'a', dataDir: '/d', join: 'b@127.0.0.1:1, c@127.0.0.1:2' },
    ]).join;
    expect(named).toEqual([
      { nodeId: 'b', raft: { host: '127.0.0.1', port: 1 } },
      { nodeId: 'c', raft: { host: '127.0.0.1', port: 2 } },
    ]);
    expect(() => resolveAgentConfig([{ nodeId: 'a', dataDir: '/d', join: 'bad id@127.0.0.1:1' }])).toThrow(
      /not a valid node id/,
    );
  });

  it.each([
    [{ nodeId: 'a', bootstrapExpect: 1 }, /data-dir is required.*setting: dataDir/],
    [{ nodeId: 'a', dataDir: '/d' }, /bootstrap-expect N.*setting: bootstrapExpect/],
    [{ nodeId: 'a', dataDir: '/d', bootstrapExpect: 3 }, /needs --join.*setting: join/],
    [{ nodeId: 'bad id!', dataDir: '/d', bootstrapExpect: 1 }, /node-id must be/],
    [{ dev: true, groups: 0 }, /groups must be an integer in \[1, 1024\].*setting: groups/],
    [{ dev: true, groups: '1.5' }, /groups must be an integer/],
    [{ dev: true, bind: 'nope' }, /bind must be host:port.*setting: bind/],
    [{ dev: true, httpAddr: '127.0.0.1:99999' }, /httpAddr must be host:port/],
    [{ dev: true, logLevel: 'loud' }, /log-level must be one of/],
    [{ dev: 'maybe' }, /dev must be true or false/],
    [{ dev: true, tickMs: 1 }, /tickMs must be an integer in \[5, 1000\]/],
  ])('refuses %j with an error naming the setting', (input, message) => {
    expect(() => resolveAgentConfig([input])).toThrow(message);
  });

  it('refuses unreadable, malformed and unknown-key config files', () => {
    expect(() => configFromFile(join(dir, 'missing.json'))).toThrow(/cannot read config file/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(() => configFromFile(bad)).toThrow(/is not valid/);
    const unknown = join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ nodeID: 'a' }));
    expect(() => configFromFile(unknown)).toThrow(/unknown setting "nodeID"/);
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- a\n- b\n');
    expect(() => configFromFile(list)).toThrow(/must hold an object/);
  });

  it('defaults the node id to the one the data dir was created with, else to the host name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-node-id-'));
    try {
      const fresh = resolveAgentConfig([{ dataDir: dir, bootstrapExpect: 1 }]);
      expect(fresh.nodeId).toBe(hostNodeId());
      expect(fresh.nodeId).toMatch(/^[A-Za-z0-9._:@-]{1,64}$/);
      claimDataDir({ dir, identity: { nodeId: 'kept-id', clusterId: 'conclave', groups: 8 } });
      expect(resolveAgentConfig([{ dataDir: dir, bootstrapExpect: 1 }]).nodeId).toBe('kept-id');
      // An explicit --node-id still wins (and claimDataDir then refuses the mismatch).
      expect(resolveAgentConfig([{ dataDir: dir, bootstrapExpect: 1, nodeId: 'other' }]).nodeId).toBe(
        'other',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes --advertise as a host without a port, and refuses anything else', () => {
    const base = { dataDir: '/tmp/x', bootstrapExpect: 1, nodeId: 's1' };
    expect(
      resolveAgentConfig([{ ...base, advertise: 'conclave-0.conclave.default.svc.cluster.local' }]).advertise,
    ).toBe('conclave-0.conclave.default.svc.cluster.local');
    expect(resolveAgentConfig([base]).advertise).toBeNull();
    for (const bad of ['host:8300', 'a b', '', 'x'.repeat(254)])
      expect(() => resolveAgentConfig([{ ...base, advertise: bad }])).toThrow(/advertise/);
  });
});
