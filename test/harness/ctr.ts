// Running containerd's client, ctr, against one containerd.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants } from 'node:os';
import { CTR_TIMEOUT_MS } from './constants.js';
import { collect } from './wait.js';

export interface CtrOptions {
  input?: string | Buffer;
  /** Default CTR_TIMEOUT_MS; on expiry ctr is killed and the promise rejects. */
  timeoutMs?: number;
  env?: Record<string, string>;
  namespace?: string;
}

export interface CtrResult {
  code: number;
  /** Set when ctr was killed by a signal. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CtrSpawnOptions {
  env?: Record<string, string>;
  namespace?: string;
  stdio?: SpawnOptions['stdio'];
}

/** Which containerd a ctr call talks to, and how. */
export interface CtrTarget {
  /** gRPC socket path. */
  address: string;
  namespace: string;
  /** ctr's CONTAINERD_SNAPSHOTTER. */
  snapshotter: string;
}

function ctrEnv(target: CtrTarget, extra?: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERD_SNAPSHOTTER: target.snapshotter, ...extra };
  delete env.CONTAINERD_ADDRESS;
  return env;
}

/** Spawns ctr and hands back the child (for a long-running `ctr run` or `ctr events`); the caller owns it. */
export function spawnCtr(target: CtrTarget, args: string[], o: CtrSpawnOptions = {}): ChildProcess {
  return spawn('ctr', ['--address', target.address, '--namespace', o.namespace ?? target.namespace, ...args], {
    env: ctrEnv(target, o.env),
    stdio: o.stdio ?? ['pipe', 'pipe', 'pipe'],
  });
}

/** The result of a spawned ctr once it exits; rejects (killing it) after timeoutMs. */
export function ctrOutcome(p: ChildProcess, what: string, timeoutMs = CTR_TIMEOUT_MS): Promise<CtrResult> {
  const out = collect(p.stdout);
  const err = collect(p.stderr);
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`ctr ${what}: ${e.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = out.text();
      const stderr = err.text();
      if (timedOut) {
        reject(
          new Error(
            `ctr ${what} timed out after ${timeoutMs} ms (killed)\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
          ),
        );
        return;
      }
      resolve({ code: code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : -1), signal, stdout, stderr });
    });
  });
}

/** `ctr --address <sock> --namespace <ns> ...args`; resolves with any exit code, rejects on timeout. */
export function runCtr(target: CtrTarget, args: string[], o: CtrOptions = {}): Promise<CtrResult> {
  const p = spawnCtr(target, args, {
    ...o,
    stdio: [o.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const result = ctrOutcome(p, args.join(' '), o.timeoutMs);
  if (o.input !== undefined) {
    p.stdin!.on('error', () => {}); // ctr may exit before reading it all
    p.stdin!.end(o.input);
  }
  return result;
}

/** Throws when ctr exited with anything but 0, with what it said. */
export function checkCtr(args: string[], r: CtrResult): CtrResult {
  if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** The non-empty lines of a `ctr … ls -q`. */
export function ctrLines(r: CtrResult | undefined): string[] {
  if (r?.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}
