// One private containerd per test file (or soak), the shim on its PATH and a
// test image imported: the set-up of every end-to-end suite.
//
//   const S = useSuite('life');                    // before: set up; after: tear down
//   test('args', e2e(S, ['args'], async (t, s, [id]) => {
//     const r = await s.run(['/probe.wasm', 'args', 'a'], { id });   // ctr run --rm
//   }));
//
// Every ctr call gets a 30 s timeout; every container id is unique on the
// machine (suite name, a tag of this process, a counter); cleanup(id) kills
// and deletes a task and its container whatever state they are in.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { daemonPaths } from '../../src/handoff/handoff.js';
import { BIN_DIR, PLATFORM, REPO, RUNTIME, SHIM_BIN, SHIM_NAME, SUITE_SETUP_TIMEOUT } from './constants.js';
import { ensureBuilt } from './build.js';
import { startContainerd, type Containerd } from './containerd.js';
import { ctrLines, ctrOutcome, type CtrOptions, type CtrResult } from './ctr.js';
import { daemonKey, shimDaemons } from './daemons.js';
import { packTestImage, type TestImage, type TestImageOptions } from './image.js';
import { settledProblems } from './leaks.js';
import { isolatedOtelEnv } from './otel-env.js';
import { escapeRegExp, processAlive, type ProcessInfo } from './processes.js';
import { sleep } from './wait.js';

export interface RunOptions extends CtrOptions {
  id: string;
  /** Extra `ctr run` flags, placed before the image ref. */
  flags?: string[];
  /** Default true: `--rm`. Ignored with detach. */
  rm?: boolean;
  /** `ctr run -d`. */
  detach?: boolean;
  /** Default RUNTIME. */
  runtime?: string;
  /** Default the suite's image. */
  image?: string;
  /** `ctr run --config <spec>`: the spec instead of an image (and its args). */
  config?: string;
  /** `ctr run --rootfs <dir>`: a rootfs dir instead of an image. */
  rootfs?: string;
}

export interface RunResult extends CtrResult {
  /** Wall time of the ctr command, ms. */
  ms: number;
  /** Date.now() when ctr returned. */
  endedAt: number;
}

export interface SpawnedRun {
  /** Writes to ctr's stdin (which ctr copies into the task's stdin FIFO). */
  write(text: string): void;
  /** Resolves when ctr exits (rejects after timeoutMs, killing it). */
  result: Promise<CtrResult>;
  kill(): void;
}

export interface Suite {
  readonly name: string;
  readonly c: Containerd;
  /** What the suite added to containerd's environment (SuiteOptions.env). */
  readonly env: Record<string, string>;
  /** The ref of the suite's image. */
  readonly image: string;
  /** The dir on containerd's PATH holding the shim. */
  readonly shimDir: string;
  /** A unique container id: <suite>-<label>-<tag>-<n>. */
  id(label: string): string;
  /** Every id handed out by id(). */
  readonly ids: string[];
  /** `ctr run [--rm|-d] --runtime R [--platform P image | --config spec | --rootfs dir] [flags] id ...args`, timed. */
  run(args: string[], opts: RunOptions): Promise<RunResult>;
  /** run() with detach, rejecting unless ctr returned 0. */
  runDetached(args: string[], opts: RunOptions): Promise<CtrResult>;
  /** `ctr run --rm …` in the background, with its stdin under the caller's control. */
  spawnRun(args: string[], opts: RunOptions): SpawnedRun;
  ctr(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  ctrOk(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  /** Kill + delete task (and its container), ignoring every error. */
  cleanup(id: string): Promise<void>;
  /** `ctr task ls` parsed into id → { pid, status }. */
  tasks(): Promise<Map<string, { pid: number; status: string }>>;
  /** Polls `ctr task ls` until the task shows status (or throws after timeoutMs). */
  waitStatus(id: string, status: string, timeoutMs?: number): Promise<void>;
  /** The shim socket path for a container (as the shim library computes it). */
  socketFor(id: string): string;
  /** The daemon serving a task (its bundle's shim.pid; for a pod, the first container's bundle). */
  shimPid(id: string): number;
  /** The long-lived daemons of this containerd (one per key). */
  daemons(): ProcessInfo[];
  /** What the daemons logged outside any container (their daemon.log: start-up, telemetry), so far. */
  daemonLog(): string;
  /** Wasm child pids seen during the suite (for leak checks). */
  readonly childPids: Set<number>;
  /** Log lines mentioning one of the ids, plus the tail. */
  logFor(...ids: string[]): string;
  /** Deletes what is left (reporting tasks still listed), then lists every shim, child, mount, bundle or socket of this suite that remains. */
  leftovers(): Promise<string[]>;
  teardown(): Promise<void>;
}

export interface SuiteOptions {
  /** Added to containerd's environment; every OTEL_* / trace carrier of ours is blanked (isolatedOtelEnv). */
  env?: Record<string, string>;
  /** An image packed beforehand (shared by several containerds); default one packed per suite. */
  image?: TestImage;
  /** How the suite's own image is packed (files, env). */
  imageOptions?: Omit<TestImageOptions, 'dir'>;
  /** Put the checkout's bin/ itself on containerd's PATH (default: a symlink to the shim in a temp dir). */
  binDir?: boolean;
  /**
   * Run a copy of bin/ and dist/ taken now, so that a `make build` during a long
   * run (e.g. the soak) changes neither the code under test nor the daemon key
   * (the build id is part of it: a rebuild would start a new daemon).
   */
  frozenShim?: boolean;
}

const runTag = randomBytes(3).toString('hex');

/** The dir containerd's PATH gets: a frozen copy, a symlink to the shim, or bin/ itself. */
function prepareShimDir(name: string, o: SuiteOptions): { dir: string; dispose(): void } {
  if (o.binDir) return { dir: BIN_DIR, dispose: () => undefined };
  const tmp = fs.mkdtempSync(path.join(tmpdir(), `wasmts-shimdir-${name}-`));
  const dispose = () => fs.rmSync(tmp, { recursive: true, force: true });
  if (!o.frozenShim) {
    fs.symlinkSync(SHIM_BIN, path.join(tmp, SHIM_NAME));
    return { dir: tmp, dispose };
  }
  // <tmp>/bin/containerd-shim-wasmts-v1 finds <tmp>/dist next to it
  for (const d of ['bin', 'dist']) fs.cpSync(path.join(REPO, d), path.join(tmp, d), { recursive: true });
  return { dir: path.join(tmp, 'bin'), dispose };
}

function runArgs(image: string, args: string[], o: RunOptions): string[] {
  const mode = o.detach ? ['-d'] : o.rm === false ? [] : ['--rm'];
  const source = o.config
    ? ['--config', o.config]
    : o.rootfs
      ? ['--rootfs', o.rootfs]
      : ['--platform', PLATFORM, o.image ?? image];
  return ['run', ...mode, '--runtime', o.runtime ?? RUNTIME, ...(o.flags ?? []), ...source, o.id, ...args];
}

/** Lines of containerd's log naming one of the ids (the id followed by a non-id character), and its tail. */
function logLinesFor(log: string, ids: string[]): string {
  const lines = log.split('\n');
  const out: string[] = [];
  for (const id of ids) {
    const re = new RegExp(`${escapeRegExp(id)}(?![\\w-])`);
    const hits = lines.filter((l) => re.test(l));
    out.push(`--- containerd log: lines mentioning ${id} (last 30 of ${hits.length}) ---`, ...hits.slice(-30));
  }
  out.push('--- containerd log: tail (last 40 lines) ---', ...lines.slice(-41));
  return out.join('\n');
}

export async function setupSuite(name: string, o: SuiteOptions = {}): Promise<Suite> {
  await ensureBuilt();
  const shim = prepareShimDir(name, o);
  let c: Containerd;
  try {
    c = await startContainerd({ shimDir: shim.dir, name, env: isolatedOtelEnv(o.env) });
  } catch (err) {
    shim.dispose();
    throw err;
  }
  let image: TestImage | undefined;
  try {
    image = o.image ?? (await packTestImage(name, { ...o.imageOptions, dir: c.tmp }));
    await c.importImage(image.tar, { timeoutMs: 30_000 });
  } catch (err) {
    await c.stop();
    shim.dispose();
    throw err;
  }
  return suiteOn(name, c, o.env ?? {}, image.ref, shim);
}

function suiteOn(
  name: string,
  c: Containerd,
  env: Record<string, string>,
  image: string,
  shim: { dir: string; dispose(): void },
): Suite {
  const childPids = new Set<number>();
  const ids: string[] = [];
  /** The daemon.log files of the daemons seen so far. */
  const daemonLogs = new Set<string>();
  let counter = 0;

  const tasks: Suite['tasks'] = async () => {
    const r = await c.ctrOk(['task', 'ls']);
    const out = new Map<string, { pid: number; status: string }>();
    for (const line of r.stdout.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 3) continue;
      const pid = Number(f[1]);
      out.set(f[0], { pid, status: f[2] });
      if (pid > 0) childPids.add(pid);
    }
    return out;
  };

  const cleanup = async (id: string): Promise<void> => {
    const q = { timeoutMs: 10_000 };
    await c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], q).catch(() => undefined);
    await c.ctr(['task', 'delete', '-f', id], q).catch(() => undefined);
    await c.ctr(['container', 'delete', id], q).catch(() => undefined);
  };

  const run = async (args: string[], o: RunOptions): Promise<RunResult> => {
    const t0 = performance.now();
    const r = await c.ctr(runArgs(image, args, o), o);
    return { ...r, ms: performance.now() - t0, endedAt: Date.now() };
  };

  const wasmChildStillRunning = (pid: number): string | undefined => {
    if (!processAlive(pid)) return undefined;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      return cmd.includes('wasm-child') ? `wasm child still running: ${pid} ${cmd}` : undefined;
    } catch {
      return undefined;
    }
  };

  return {
    name,
    c,
    env,
    image,
    shimDir: shim.dir,
    ids,
    childPids,
    id(label) {
      const id = `${name}-${label}-${runTag}-${++counter}`;
      ids.push(id);
      return id;
    },
    run,
    async runDetached(args, o) {
      const r = await run(args, { ...o, detach: true });
      if (r.code !== 0) throw new Error(`ctr run -d ${o.id} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r;
    },
    spawnRun(args, o) {
      const p = c.ctrSpawn(runArgs(image, args, o), { stdio: ['pipe', 'pipe', 'pipe'] });
      p.stdin!.on('error', () => undefined);
      const result = ctrOutcome(p, `run ${o.id}`, o.timeoutMs);
      result.catch(() => undefined);
      return {
        write: (text) => {
          p.stdin!.write(text);
        },
        result,
        kill: () => {
          if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
        },
      };
    },
    ctr: (args, o) => c.ctr(args, o),
    ctrOk: (args, o) => c.ctrOk(args, o),
    cleanup,
    tasks,
    async waitStatus(id, status, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const t = (await tasks()).get(id);
        const last = t ? t.status : '(absent)';
        if (last === status) return;
        if (Date.now() > deadline)
          throw new Error(`task ${id} did not reach ${status} within ${timeoutMs} ms (last: ${last})`);
        await sleep(100);
      }
    },
    socketFor: (id) => c.socketFor(id),
    shimPid(id) {
      const pid = Number(fs.readFileSync(path.join(c.bundleDir(id), 'shim.pid'), 'utf8'));
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no shim pid for ${id}`);
      return pid;
    },
    daemons: () => shimDaemons(c.address),
    daemonLog() {
      for (const d of shimDaemons(c.address)) {
        const key = daemonKey(d.pid);
        if (key) daemonLogs.add(daemonPaths(key).log);
      }
      return [...daemonLogs]
        .map((f) => {
          try {
            return fs.readFileSync(f, 'utf8');
          } catch {
            return ''; // its daemon left and removed it
          }
        })
        .join('');
    },
    logFor: (...wanted) => logLinesFor(c.log(), wanted),
    async leftovers() {
      // everything the tests created must be gone through containerd, not the harness
      const left = ctrLines(await c.ctr(['task', 'ls', '-q']));
      for (const id of [...left, ...ctrLines(await c.ctr(['container', 'ls', '-q']))]) await cleanup(id);
      const problems = left.length ? [`tasks still listed: ${left.join(', ')}`] : [];
      // start/delete exit at once; the long-lived daemon stays, holding nothing of the finished containers
      problems.push(...(await settledProblems(c, ids, 8_000)));
      for (const pid of childPids) {
        const still = wasmChildStillRunning(pid);
        if (still) problems.push(still);
      }
      return problems;
    },
    async teardown() {
      try {
        await c.stop();
      } finally {
        shim.dispose();
      }
    },
  };
}

/**
 * Registers the suite's set-up in `before` and its teardown in `after`; the
 * getter throws in a test whose suite did not come up.
 */
export function useSuite(name: string, o: SuiteOptions = {}): () => Suite {
  let s: Suite | undefined;
  before(async () => {
    s = await setupSuite(name, o);
  }, SUITE_SETUP_TIMEOUT);
  after(async () => {
    await s?.teardown();
  });
  return () => {
    if (!s) throw new Error('suite setup failed (see the before hook)');
    return s;
  };
}
