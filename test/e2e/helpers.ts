// Shared setup for the end-to-end suites: one private containerd per test
// file, the shim on its PATH, the C test modules built and packed into an OCI
// image that is imported with --all-platforms.
//
//   let s: Suite;
//   before(async () => { s = await setupSuite('life'); });
//   after(() => s?.teardown());
//   test('args', e2e(() => s, ['args'], async (t, s, [id]) => {
//     const r = await s.run(['/probe.wasm', 'args', 'a'], { id: id! });   // ctr run --rm
//   }));
//
// Every ctr call gets a 30 s timeout; every container id is unique per suite
// (prefixed with the suite name); cleanup(id) kills and deletes a task and its
// container whatever state they are in.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  busyDaemonProblems,
  listMounts,
  listProcesses,
  processAlive,
  startContainerd,
  type Containerd,
  type CtrOptions,
  type CtrResult,
} from '../helpers/containerd.js';
import { isShimDaemon } from '../../src/handoff/handoff.js';
import { packImage } from '../../src/image/oci.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHIM_BIN = path.join(REPO, 'bin', 'containerd-shim-wasmts-v1');
export const RUNTIME = 'io.containerd.wasmts.v1';
export const PLATFORM = 'wasip1/wasm';
export const MODULES = path.join(REPO, 'build', 'modules');
export const SOCKET_DIR = '/run/containerd/s';

/** Text of /data/greeting.txt in the test image. */
export const GREETING = 'greetings from the image layer';
/** Env baked into the image config. */
export const IMAGE_ENV = 'WASMTS_IMAGE_ENV=from-image';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------
// building

function newestMtime(dir: string): number {
  let newest = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (ent.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs fn while holding a directory lock (test files run in parallel processes). */
/** Runs fn holding build/.<name>.lock, so parallel test files build a step once. */
export async function withLock<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const dir = path.join(REPO, 'build');
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, `.${name}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // a lock older than 2 minutes belongs to a dead run
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 120_000) fs.rmdirSync(lock);
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lock}`);
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmdirSync(lock);
  }
}

/**
 * Builds the test modules, and the shim bundle when dist/ has none. A bundle
 * older than src/ is only warned about (`make build` rebuilds it; rebuilding
 * here could pick up half-edited sources or swap dist/ under running shims).
 */
export async function ensureBuilt(): Promise<void> {
  await withLock('e2e-build', () => {
    execFileSync('bash', [path.join(REPO, 'scripts', 'build-modules.sh')], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const bundle = path.join(REPO, 'dist', 'shim.cjs');
    if (!fs.existsSync(bundle)) {
      const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build.mjs')], { cwd: REPO, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`node scripts/build.mjs failed:\n${r.stderr}`);
    } else if (newestMtime(path.join(REPO, 'src')) > fs.statSync(bundle).mtimeMs) {
      process.stderr.write('e2e: warning: dist/ is older than src/; run `make build` to test the current sources\n');
    }
  });
}

// ---------------------------------------------------------------------------
// the suite

export interface RunOptions extends CtrOptions {
  id: string;
  /** Extra `ctr run` flags, placed before the image ref. */
  flags?: string[];
  /** Default true: `--rm`. */
  rm?: boolean;
  /** Default RUNTIME. */
  runtime?: string;
  /** Default the suite's image. */
  image?: string;
}

export interface Suite {
  readonly name: string;
  readonly c: Containerd;
  readonly image: string;
  /** Temp dir holding the shim symlink. */
  readonly shimDir: string;
  /** A unique container id: <suite>-<label>-<n>. */
  id(label: string): string;
  /** Every id handed out by id(). */
  readonly ids: string[];
  /** `ctr run [--rm] --runtime R --platform wasip1/wasm [flags] image id ...args`. */
  run(args: string[], opts: RunOptions): Promise<CtrResult>;
  /** Like run() but in the background (`ctr run -d`); resolves once ctr returned 0. */
  runDetached(args: string[], opts: RunOptions): Promise<CtrResult>;
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
  /** Wasm child pids seen during the suite (for leak checks). */
  readonly childPids: Set<number>;
  /** Log lines mentioning one of the ids, plus the tail. */
  logFor(...ids: string[]): string;
  /** Deletes what is left (reporting tasks still listed), then lists every shim, child, mount or socket of this suite that remains. */
  leftovers(): Promise<string[]>;
  teardown(): Promise<void>;
}

export function socketPathFor(address: string, namespace: string, grouping: string): string {
  return `${SOCKET_DIR}/${createHash('sha256')
    .update(path.join(address, namespace, grouping))
    .digest('hex')}`;
}

/** Builds the staging tree for the image: data files, an app dir, a native ELF. */
function stageImageFiles(dir: string): { src: string; dest: string }[] {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'data', 'greeting.txt'), `${GREETING}\n`);
  fs.mkdirSync(path.join(dir, 'app'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'app', 'marker.txt'), 'app marker\n');
  fs.mkdirSync(path.join(dir, 'scratch'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'scratch', '.keep'), '');
  return [
    { src: path.join(MODULES, 'hello.wasm'), dest: 'hello.wasm' },
    { src: path.join(MODULES, 'fib.wasm'), dest: 'fib.wasm' },
    { src: path.join(MODULES, 'reactor.wasm'), dest: 'reactor.wasm' },
    { src: path.join(MODULES, 'probe.native'), dest: 'probe.native' },
    { src: path.join(dir, 'data'), dest: 'data' },
    { src: path.join(dir, 'app'), dest: 'app' },
    { src: path.join(dir, 'scratch'), dest: 'scratch' },
  ];
}

export interface SuiteOptions {
  /**
   * Run a copy of bin/ and dist/ taken now, so that a `make build` during a long
   * run (e.g. the soak) changes neither the code under test nor the daemon key
   * (the build id is part of it: a rebuild would start a new daemon).
   */
  frozenShim?: boolean;
}

export async function setupSuite(name: string, opts: SuiteOptions = {}): Promise<Suite> {
  await ensureBuilt();
  const shimDir = fs.mkdtempSync(path.join(tmpdir(), `wasmts-shimdir-${name}-`));
  if (opts.frozenShim) {
    // <shimDir>/bin/containerd-shim-wasmts-v1 finds <shimDir>/dist next to it; containerd's PATH gets <shimDir>/bin
    for (const dir of ['bin', 'dist']) fs.cpSync(path.join(REPO, dir), path.join(shimDir, dir), { recursive: true });
  } else {
    fs.symlinkSync(SHIM_BIN, path.join(shimDir, 'containerd-shim-wasmts-v1'));
  }
  let c: Containerd;
  try {
    c = await startContainerd({ shimDir: opts.frozenShim ? path.join(shimDir, 'bin') : shimDir, name });
  } catch (err) {
    fs.rmSync(shimDir, { recursive: true, force: true });
    throw err;
  }
  const image = `docker.io/wasmts-e2e/${name}:v1`;
  const childPids = new Set<number>();
  const ids: string[] = [];
  let counter = 0;
  try {
    const stage = path.join(c.tmp, 'image-stage');
    const tar = path.join(c.tmp, `${name}-image.tar`);
    await packImage({
      module: path.join(MODULES, 'probe.wasm'),
      files: stageImageFiles(stage),
      ref: image,
      env: ['PATH=/', IMAGE_ENV],
      output: tar,
    });
    await c.importImage(tar, { timeoutMs: 30_000 });
  } catch (err) {
    await c.stop();
    fs.rmSync(shimDir, { recursive: true, force: true });
    throw err;
  }

  const runArgs = (args: string[], o: RunOptions, detach: boolean): string[] => [
    'run',
    ...(detach ? ['-d'] : o.rm === false ? [] : ['--rm']),
    '--runtime',
    o.runtime ?? RUNTIME,
    '--platform',
    PLATFORM,
    ...(o.flags ?? []),
    o.image ?? image,
    o.id,
    ...args,
  ];

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

  const logFor = (...wanted: string[]): string => {
    const lines = c.log().split('\n');
    const out: string[] = [];
    for (const id of wanted) {
      // the id followed by a non-id character, so "x-1" does not match "x-10"
      const re = new RegExp(`${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`);
      const hits = lines.filter((l) => re.test(l));
      out.push(`--- containerd log: lines mentioning ${id} (last 30 of ${hits.length}) ---`, ...hits.slice(-30));
    }
    out.push('--- containerd log: tail (last 40 lines) ---', ...lines.slice(-41));
    return out.join('\n');
  };

  const cleanup = async (id: string): Promise<void> => {
    const q = { timeoutMs: 10_000 };
    await c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], q).catch(() => undefined);
    await c.ctr(['task', 'delete', '-f', id], q).catch(() => undefined);
    await c.ctr(['container', 'delete', id], q).catch(() => undefined);
  };

  const suite: Suite = {
    name,
    c,
    image,
    shimDir,
    ids,
    childPids,
    id(label) {
      const id = `${name}-${label}-${++counter}`;
      ids.push(id);
      return id;
    },
    run: (args, o) => c.ctr(runArgs(args, o, false), o),
    async runDetached(args, o) {
      const r = await c.ctr(runArgs(args, o, true), o);
      if (r.code !== 0) throw new Error(`ctr run -d ${o.id} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r;
    },
    ctr: (args, o) => c.ctr(args, o),
    ctrOk: (args, o) => c.ctrOk(args, o),
    cleanup,
    tasks,
    async waitStatus(id, status, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        const t = (await tasks()).get(id);
        last = t ? t.status : '(absent)';
        if (last === status) return;
        if (Date.now() > deadline)
          throw new Error(`task ${id} did not reach ${status} within ${timeoutMs} ms (last: ${last})`);
        await sleep(100);
      }
    },
    socketFor: (id) => socketPathFor(c.address, c.namespace, id),
    logFor,
    async leftovers() {
      const problems: string[] = [];
      // everything the tests created must be gone through containerd, not the harness
      const tl = await c.ctr(['task', 'ls', '-q']);
      const left = tl.stdout
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
      if (left.length) problems.push(`tasks still listed: ${left.join(', ')}`);
      for (const id of left) await cleanup(id);
      const cl = await c.ctr(['container', 'ls', '-q']);
      const cleft = cl.stdout
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const id of cleft) await cleanup(id);

      // start/delete exit at once; the long-lived daemon stays, holding nothing of the finished containers.
      const shimRe = new RegExp(`-address ${c.address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`);
      const deadline = Date.now() + 8_000;
      const running = () => listProcesses(shimRe).filter((p) => p.pid !== c.pid && !isShimDaemon(p.argv));
      let shims = running();
      let busy = busyDaemonProblems(c.address, c.tmp);
      while ((shims.length || busy.length) && Date.now() < deadline) {
        await sleep(100);
        shims = running();
        busy = busyDaemonProblems(c.address, c.tmp);
      }
      for (const p of shims) problems.push(`shim process still running: ${p.pid} ${p.cmdline}`);
      problems.push(...busy);

      // Wasm children: the ones we saw, and any wasm-child holding a file under our temp dir
      for (const pid of childPids) {
        if (!processAlive(pid)) continue;
        let cmd = '';
        try {
          cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          continue;
        }
        if (cmd.includes('wasm-child')) problems.push(`wasm child still running: ${pid} ${cmd}`);
      }
      for (const p of listProcesses(/wasm-child/)) {
        let fds: string[] = [];
        try {
          fds = fs.readdirSync(`/proc/${p.pid}/fd`);
        } catch {
          continue;
        }
        const ours = fds.some((fd) => {
          try {
            return fs.readlinkSync(`/proc/${p.pid}/fd/${fd}`).startsWith(c.tmp + '/');
          } catch {
            return false;
          }
        });
        if (ours && !childPids.has(p.pid))
          problems.push(`wasm child holding files of this suite: ${p.pid} ${p.cmdline}`);
      }

      for (const m of listMounts(c.tmp)) problems.push(`mount left: ${m.mountPoint} (${m.fsType})`);
      for (const id of ids) {
        const s = socketPathFor(c.address, c.namespace, id);
        if (fs.existsSync(s)) problems.push(`shim socket left for ${id}: ${s}`);
      }
      return problems;
    },
    async teardown() {
      try {
        await c.stop();
      } finally {
        fs.rmSync(shimDir, { recursive: true, force: true });
      }
    },
  };
  return suite;
}

/**
 * A test body wrapper: registers cleanup for ids, and on failure prints the
 * containerd log lines that mention them (the shim daemon's log goes there).
 */
export function e2e(
  s: () => Suite,
  labels: string[],
  body: (t: TestContext, s: Suite, ids: string[]) => Promise<void>,
  opts: { logOnFailure?: boolean } = {},
) {
  return async (t: TestContext) => {
    const suite = s();
    if (!suite) throw new Error('suite setup failed (see before hook)');
    const first = suite.ids.length;
    const list = labels.map((l) => suite.id(l));
    // every id handed out during the test (also by suite.id() in the body) is cleaned up
    t.after(async () => {
      await Promise.all(suite.ids.slice(first).map((id) => suite.cleanup(id)));
    });
    try {
      await body(t, suite, list);
    } catch (err) {
      if (opts.logOnFailure !== false) process.stderr.write(`\n${suite.logFor(...suite.ids.slice(first))}\n`);
      throw err;
    }
  };
}

export interface SpawnedRun {
  /** Writes to ctr's stdin (which ctr copies into the task's stdin FIFO). */
  write(text: string): void;
  /** Resolves when ctr exits (rejects after timeoutMs, killing it). */
  result: Promise<CtrResult>;
  kill(): void;
}

/** `ctr run --rm ...` in the background, with its stdin under the caller's control. */
export function spawnRun(s: Suite, args: string[], o: RunOptions & { timeoutMs?: number }): SpawnedRun {
  const full = [
    'run',
    ...(o.rm === false ? [] : ['--rm']),
    '--runtime',
    o.runtime ?? RUNTIME,
    '--platform',
    PLATFORM,
    ...(o.flags ?? []),
    o.image ?? s.image,
    o.id,
    ...args,
  ];
  const p = s.c.ctrSpawn(full, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = collect(p.stdout);
  const err = collect(p.stderr);
  p.stdin!.on('error', () => undefined);
  const result = new Promise<CtrResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(
        new Error(
          `ctr run ${o.id} timed out after ${o.timeoutMs ?? 30_000} ms\nstdout: ${out.text().slice(-2000)}\nstderr: ${err.text().slice(-2000)}`,
        ),
      );
    }, o.timeoutMs ?? 30_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout: out.text(), stderr: err.text() });
    });
  });
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
}

/** Collects stdout of a long-running ctr child (e.g. `ctr events`). */
export function collect(stream: NodeJS.ReadableStream | null | undefined): { text(): string } {
  const chunks: Buffer[] = [];
  stream?.on('data', (b: Buffer) => chunks.push(b));
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

export async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export { sleep };
