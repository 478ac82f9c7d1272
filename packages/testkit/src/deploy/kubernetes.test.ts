/**
 * deploy/kubernetes, checked offline: every document is validated by its kubernetes-models
 * class (types, required fields, enums and formats of the Kubernetes OpenAPI schema), then
 * the properties docs/deployment.md relies on are asserted by name. The validators do not
 * reject unknown fields, so a misspelt field would pass them: the assertions below read each
 * field that matters by its real name and fail if it is missing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConfigInput, configFromFile, resolveAgentConfig } from '@conclave/server';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { repoFile, repoRoot, shutdownHandOffMsMax } from './testing/repo.js';

const dir = join(repoRoot, 'deploy/kubernetes');
const namespace = 'prod';
const clusterDomain = 'cluster.local';
const raftPort = 8300;
const httpPort = 8500;

type Manifest = StatefulSet | Service | PodDisruptionBudget;

/** Every document of every manifest file, as its model; an unknown kind fails. */
function loadManifests(): { file: string; model: Manifest }[] {
  const files = manifestFiles();
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const data = doc.toJS() as { apiVersion?: string; kind?: string };
      const kind = `${data.apiVersion}/${data.kind}`;
      switch (kind) {
        case 'apps/v1/StatefulSet':
          return { file, model: new StatefulSet(data as ConstructorParameters<typeof StatefulSet>[0]) };
        case 'v1/Service':
          return { file, model: new Service(data as ConstructorParameters<typeof Service>[0]) };
        case 'policy/v1/PodDisruptionBudget':
          return {
            file,
            model: new PodDisruptionBudget(data as ConstructorParameters<typeof PodDisruptionBudget>[0]),
          };
        default:
          throw new Error(`${file}: no model for ${kind}`);
      }
    }),
  );
}

function manifestFiles(): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort();
}

const manifests = loadManifests();

function only<T extends Manifest>(type: abstract new (...args: never[]) => T, name?: string): T {
  const found = manifests
    .map((m) => m.model)
    .filter((m): m is T => m instanceof type && (name === undefined || m.metadata?.name === name));
  expect(found, `${type.name} ${name ?? ''}`).toHaveLength(1);
  return found[0] as T;
}

function required<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`${what} is missing`);
  return value;
}

const statefulSet = only(StatefulSet);
const spec = required(statefulSet.spec, 'StatefulSet spec');
const podSpec = required(spec.template.spec, 'pod template spec');
const container: IContainer = (() => {
  expect(podSpec.containers).toHaveLength(1);
  return podSpec.containers[0] as IContainer;
})();
const serverLabels = required(spec.selector.matchLabels, 'StatefulSet selector');

/** `$(VAR)` in args, expanded the way the kubelet does from the container's env. */
function expand(text: string, env: ReadonlyMap<string, string>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, name: string) =>
    required(env.get(name), `env ${name} referenced by $(${name})`),
  );
}

/** The container's env as the kubelet gives it to pod `podName`. */
function podEnv(podName: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const variable of container.env ?? ([] as IEnvVar[])) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (variable.value !== undefined) env.set(variable.name, variable.value);
    else if (field === 'metadata.name') env.set(variable.name, podName);
    else if (field === 'metadata.namespace') env.set(variable.name, namespace);
    else throw new Error(`env ${variable.name}: no value this test knows how to give`);
  }
  return env;
}

/** Pod `ordinal`'s arguments, expanded, as flag -> value (every flag here takes a value). */
function podFlags(ordinal: number): Map<string, string> {
  const podName = `${statefulSet.metadata?.name}-${ordinal}`;
  const args = (container.args ?? []).map((arg) => expand(arg, podEnv(podName)));
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const flag = required(args[i], `arg ${i}`);
    expect(flag, `arg ${i} should be a flag`).toMatch(/^--[a-z-]+$/);
    expect(flags.has(flag), `${flag} given twice`).toBe(false);
    flags.set(flag, required(args[i + 1], `the value of ${flag}`));
  }
  return flags;
}

function podDns(ordinal: number): string {
  return `${statefulSet.metadata?.name}-${ordinal}.${spec.serviceName}.${namespace}.svc.${clusterDomain}`;
}

function portNumber(name: string): number {
  return required(
    container.ports?.find((p) => p.name === name),
    `container port ${name}`,
  ).containerPort;
}

function httpGet(probe: IProbe | undefined, what: string): { path: string; port: number } {
  const get = required(required(probe, what).httpGet, `${what}.httpGet`);
  const port = typeof get.port === 'string' ? portNumber(get.port) : get.port;
  return { path: required(get.path, `${what}.httpGet.path`), port };
}

describe('deploy/kubernetes', () => {
  it('every document validates against its Kubernetes model', () => {
    expect(manifests.map((m) => `${m.file}: ${m.model.kind}`)).toEqual([
      'pdb.yaml: PodDisruptionBudget',
      'service-client.yaml: Service',
      'service-headless.yaml: Service',
      'statefulset.yaml: StatefulSet',
    ]);
    for (const { file, model } of manifests) expect(() => model.validate(), file).not.toThrow();
  });

  it('the models catch a wrong type, so the validation above is not vacuous', () => {
    const broken = structuredClone(only(Service, 'conclave').toJSON()) as Record<string, unknown>;
    (broken.spec as Record<string, unknown>).publishNotReadyAddresses = 'yes';
    expect(() => new Service(broken as ConstructorParameters<typeof Service>[0]).validate()).toThrow(
      /publishNotReadyAddresses must be boolean/,
    );
  });

  it('kustomization.yaml lists every manifest and nothing else', () => {
    const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
    expect([...kustomization.resources].sort()).toEqual(manifestFiles());
  });

  it('the StatefulSet runs three servers started together, each on its own node', () => {
    expect(spec.replicas).toBe(3);
    expect(spec.podManagementPolicy).toBe('Parallel');
    expect(spec.updateStrategy?.type ?? 'RollingUpdate').toBe('RollingUpdate');
    expect(spec.template.metadata?.labels).toMatchObject(serverLabels);
    const antiAffinity = podSpec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    expect(antiAffinity?.map((term) => [term.topologyKey, term.labelSelector?.matchLabels])).toEqual([
      ['kubernetes.io/hostname', serverLabels],
    ]);
  });

  it('every pod gets the same bootstrap flags: --bootstrap-expect 3 and all three pod DNS names', () => {
    const pods = [0, 1, 2].map(podFlags);
    const all = [0, 1, 2].map((i) => `${podDns(i)}:${raftPort}`).join(',');
    for (const [ordinal, flags] of pods.entries()) {
      expect(flags.get('--bootstrap-expect'), `pod ${ordinal}`).toBe('3');
      expect(flags.get('--join'), `pod ${ordinal}`).toBe(all);
      // Its own name, with the Raft port, is among them: the server finds itself in the list.
      expect(flags.get('--join')?.split(','), `pod ${ordinal}`).toContain(
        `${flags.get('--advertise')}:${raftPort}`,
      );
    }
    // Apart from who the pod is, the flags are identical.
    const shared = pods.map((flags) =>
      [...flags].filter(([flag]) => flag !== '--node-id' && flag !== '--advertise'),
    );
    expect(shared[1]).toEqual(shared[0]);
    expect(shared[2]).toEqual(shared[0]);
  });

  it('each pod is named by its pod name, advertises its pod DNS name and binds every interface', () => {
    for (const ordinal of [0, 1, 2]) {
      const flags = podFlags(ordinal);
      expect(flags.get('--node-id')).toBe(`conclave-${ordinal}`);
      // A host only: the agent takes the ports from --bind and --http-addr, and refuses a port.
      expect(flags.get('--advertise')).toBe(podDns(ordinal));
      expect(flags.get('--advertise')).not.toMatch(/:/);
      expect(flags.get('--bind')).toBe(`0.0.0.0:${raftPort}`);
      expect(flags.get('--http-addr')).toBe(`0.0.0.0:${httpPort}`);
      expect(portNumber('raft')).toBe(raftPort);
      expect(portNumber('http')).toBe(httpPort);
    }
  });

  /** Pod `ordinal`'s flags as agent settings, over the image's config file, resolved by the agent's code. */
  function podConfig(ordinal: number, change: (input: ConfigInput) => void = () => {}) {
    const settingOf: Record<string, keyof ConfigInput> = {
      '--node-id': 'nodeId',
      '--data-dir': 'dataDir',
      '--bind': 'bind',
      '--http-addr': 'httpAddr',
      '--advertise': 'advertise',
      '--bootstrap-expect': 'bootstrapExpect',
      '--join': 'join',
    };
    const input: ConfigInput = {};
    for (const [flag, value] of podFlags(ordinal)) {
      const setting = settingOf[flag];
      if (setting === undefined) throw new Error(`${flag}: not a flag this test maps to a setting`);
      input[setting] = value;
    }
    change(input);
    const image = configFromFile(join(repoRoot, 'deploy/docker/agent.yaml'));
    return resolveAgentConfig([image, input]);
  }

  it("every flag is a setting the agent accepts, over the image's config", () => {
    const config = podConfig(1);
    expect(config).toMatchObject({
      nodeId: 'conclave-1',
      advertise: podDns(1),
      dataDir: '/var/lib/conclave',
      bind: { host: '0.0.0.0', port: raftPort },
      httpAddr: { host: '0.0.0.0', port: httpPort },
      bootstrapExpect: 3,
    });
    expect(config.join).toEqual(
      [0, 1, 2].map((i) => ({ nodeId: null, raft: { host: podDns(i), port: raftPort } })),
    );
  });

  it('the agent refuses --advertise with a port, the form these manifests must not use', () => {
    expect(() =>
      podConfig(1, (input) => {
        input.advertise = `${podDns(1)}:${raftPort}`;
      }),
    ).toThrow(/advertise must be a host name or IP address \(no port\)/);
  });

  it("the guide's volume replacement drops exactly --bootstrap-expect 3, leaving a pod that joins", () => {
    // docs/deployment.md patches the template by position: a JSON patch that tests that
    // args[i] is --bootstrap-expect, then removes args[i + 1] and args[i].
    const guide = repoFile('docs/deployment.md');
    const tested = [
      ...guide.matchAll(
        /"op":"test","path":"\/spec\/template\/spec\/containers\/0\/args\/(\d+)","value":"--bootstrap-expect"/g,
      ),
    ].map((m) => Number(m[1]));
    expect(tested).toHaveLength(1);
    const at = tested[0] as number;
    const args = container.args ?? [];
    expect(args[at]).toBe('--bootstrap-expect');
    expect(args[at + 1]).toBe('3');
    expect(guide).toContain(`{"op":"remove","path":"/spec/template/spec/containers/0/args/${at + 1}"}`);
    expect(guide).toContain(`{"op":"remove","path":"/spec/template/spec/containers/0/args/${at}"}`);
    expect(guide).toContain(
      `{"op":"add","path":"/spec/template/spec/containers/0/args/${at}","value":"--bootstrap-expect"}`,
    );
    expect(guide).toContain(
      `{"op":"add","path":"/spec/template/spec/containers/0/args/${at + 1}","value":"${args[at + 1]}"}`,
    );
    // Without it the pod is a joiner: the same --join list, no bootstrap.
    const config = podConfig(1, (input) => {
      delete input.bootstrapExpect;
    });
    expect(config.bootstrapExpect).toBeNull();
    expect(config.join).toHaveLength(3);
  });

  it("the headless Service is the StatefulSet's, with both ports, and publishes pods before they are ready", () => {
    const headless = only(Service, spec.serviceName);
    expect(headless.spec?.clusterIP).toBe('None');
    expect(headless.spec?.publishNotReadyAddresses).toBe(true);
    expect(headless.spec?.selector).toEqual(serverLabels);
    expect(headless.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['raft', raftPort, 'raft'],
      ['http', httpPort, 'http'],
    ]);
  });

  it('the client Service serves the HTTP API of the same pods', () => {
    const client = only(Service, 'conclave-http');
    expect(client.spec?.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(client.spec?.clusterIP).toBeUndefined();
    expect(client.spec?.selector).toEqual(serverLabels);
    expect(client.spec?.ports?.map((p) => [p.port, p.targetPort])).toEqual([[httpPort, 'http']]);
  });

  it('the PodDisruptionBudget lets one server at most be disrupted', () => {
    const pdb = only(PodDisruptionBudget);
    expect(pdb.spec?.maxUnavailable).toBe(1);
    expect(pdb.spec?.minAvailable).toBeUndefined();
    expect(pdb.spec?.selector?.matchLabels).toEqual(serverLabels);
  });

  it('readiness is autopilot health; liveness and startup are /v1/status/leader; all on the HTTP port', () => {
    expect(httpGet(container.readinessProbe, 'readinessProbe')).toEqual({
      path: '/v1/operator/autopilot/health',
      port: httpPort,
    });
    expect(httpGet(container.livenessProbe, 'livenessProbe')).toEqual({
      path: '/v1/status/leader',
      port: httpPort,
    });
    expect(httpGet(container.startupProbe, 'startupProbe')).toEqual({
      path: '/v1/status/leader',
      port: httpPort,
    });
    // Liveness must not restart a healthy server for the cluster's trouble: it never asks
    // other servers (readiness does, and a failing readiness only takes the pod out of the Service).
    expect(container.livenessProbe?.httpGet?.path).not.toMatch(/autopilot/);
  });

  it('each server keeps its data on its own PersistentVolumeClaim, mounted at the data dir', () => {
    const templates = required(spec.volumeClaimTemplates, 'volumeClaimTemplates');
    expect(templates.map((t) => t.metadata?.name)).toEqual(['data']);
    const claim = required(templates[0]?.spec, 'the claim spec');
    expect(claim.accessModes).toEqual(['ReadWriteOnce']);
    expect(claim.resources?.requests?.storage).toBeDefined();
    const mount = container.volumeMounts?.find((m) => m.name === 'data');
    expect(mount?.mountPath).toBe(podFlags(0).get('--data-dir'));
    expect(podSpec.volumes?.some((v) => v.name === 'data')).toBe(false);
    expect(spec.persistentVolumeClaimRetentionPolicy).toEqual({
      whenDeleted: 'Retain',
      whenScaled: 'Retain',
    });
  });

  it('asks for and caps CPU and memory', () => {
    for (const kind of ['requests', 'limits'] as const) {
      expect(container.resources?.[kind]?.cpu, kind).toBeDefined();
      expect(container.resources?.[kind]?.memory, kind).toBeDefined();
    }
  });

  it("runs as the image's non-root user, without privileges, on a read-only root", () => {
    const pod = required(podSpec.securityContext, 'pod securityContext');
    expect(pod.runAsNonRoot).toBe(true);
    expect(pod.runAsUser).toBeGreaterThan(0);
    expect(pod.fsGroup).toBe(pod.runAsGroup);
    const dockerfile = repoFile('deploy/docker/Dockerfile');
    expect(dockerfile).toContain(`USER ${pod.runAsUser}:${pod.runAsGroup}`);
    const own = required(container.securityContext, 'container securityContext');
    expect(own.allowPrivilegeEscalation).toBe(false);
    expect(own.readOnlyRootFilesystem).toBe(true);
    expect(own.capabilities?.drop).toEqual(['ALL']);
    expect(own.privileged ?? false).toBe(false);
    expect(podSpec.automountServiceAccountToken).toBe(false);
  });

  it('gives the agent time to hand its leaderships away before SIGKILL', () => {
    const grace = required(podSpec.terminationGracePeriodSeconds, 'terminationGracePeriodSeconds');
    expect(grace * 1000).toBeGreaterThan(shutdownHandOffMsMax());
  });
});
