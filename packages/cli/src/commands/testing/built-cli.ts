import { spawn } from 'node:child_process';
import { assertBuilt, cliPath } from '@conclave/testkit';

/** How long one run of the built CLI may take before the test fails (ms). */
const builtCliRunMsMax = 30_000;

/**
 * Run the built `conclave` (dist) as a process, as a shell would, and wait for its exit:
 * what only the real entry point does (the program's own options and usage errors, the
 * process exit code) is tested this way. CONCLAVE_HTTP_ADDR and CONSUL_HTTP_ADDR are unset
 * unless `env` sets them.
 */
export async function runBuiltCli(
  argv: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  assertBuilt();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CONCLAVE_HTTP_ADDR;
  delete env.CONSUL_HTTP_ADDR;
  const child = spawn(process.execPath, [cliPath, ...argv], {
    cwd: options.cwd,
    env: { ...env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), builtCliRunMsMax);
  try {
    // 'close' comes after the output streams end, so the output is complete.
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode) => resolve(exitCode));
    });
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}
