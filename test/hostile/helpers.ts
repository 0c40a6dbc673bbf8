// Shared pieces of the hostile suites and the soak script: where a task's
// bundle and daemon are, /proc figures (fds, RSS, uid), a leak census of one
// private containerd (the long-lived shared daemon may stay, holding nothing
// of finished containers), and a socket of that daemon driven by hand (like
// test/frontend/cli.test.ts).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  busyDaemonProblems,
  descendants,
  listMounts,
  listProcesses,
  processAlive,
  startContainerd,
  type Containerd,
  type CtrResult,
} from '../helpers/containerd.js';
import { isShimDaemon } from '../../src/handoff/handoff.js';
import {
  ensureBuilt,
  MODULES,
  PLATFORM,
  RUNTIME,
  SHIM_BIN,
  socketPathFor,
  sleep,
  until as e2eUntil,
} from '../e2e/helpers.js';
import { packImage } from '../../src/image/oci.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import type { ServiceClient } from '../../src/ttrpc/types.js';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';

export { sleep } from '../e2e/helpers.js';

/** The e2e suites' `until`, polling more often: these tests watch short-lived processes. */
export function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  return e2eUntil(what, fn, timeoutMs, everyMs);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------
// /proc

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Where each fd of pid points (for messages). */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

function statusField(pid: number, field: string): string {
  const m = new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return m[1].trim();
}

/** Resident set size in KiB. */
export function rssKb(pid: number): number {
  return Number(statusField(pid, 'VmRSS').split(/\s+/)[0]);
}

/** [real, effective, saved, fs] uids, gids, and the supplementary groups. */
export function ids(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const nums = (s: string) => s.split(/\s+/).filter(Boolean).map(Number);
  return {
    uid: nums(statusField(pid, 'Uid')),
    gid: nums(statusField(pid, 'Gid')),
    groups: nums(statusField(pid, 'Groups')),
  };
}

export { descendants, processAlive };

// ---------------------------------------------------------------------------
// one containerd's tasks

export function bundleDir(c: Containerd, id: string, ns = c.namespace): string {
  return path.join(c.state, 'io.containerd.runtime.v2.task', ns, id);
}

/** The daemon serving a task (its bundle's shim.pid; for a pod, the first container's bundle). */
export function shimPidOf(c: Containerd, id: string, ns = c.namespace): number {
  const pid = Number(fs.readFileSync(path.join(bundleDir(c, id, ns), 'shim.pid'), 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no shim pid for ${id}`);
  return pid;
}

export function socketOf(c: Containerd, grouping: string, ns = c.namespace): string {
  return socketPathFor(c.address, ns, grouping);
}

/**
 * Shim processes of this containerd: `start` and `delete` (which exit at
 * once) and the long-lived daemons (`daemon`: true, see isShimDaemon).
 */
export function shimProcesses(c: Containerd): { pid: number; cmdline: string; daemon: boolean }[] {
  const re = new RegExp(`(^|\\s)-address ${escapeRe(c.address)}(\\s|$)`);
  return listProcesses(re)
    .filter((p) => p.pid !== c.pid)
    .map((p) => ({ pid: p.pid, cmdline: p.cmdline, daemon: isShimDaemon(p.argv) }));
}

/** Wasm children holding a file below the containerd's temp dir (every running child holds its rootfs preopen). */
export function wasmChildren(c: Containerd): { pid: number; cmdline: string }[] {
  return listProcesses(/wasm-child/)
    .filter((p) => {
      try {
        return fs.readdirSync(`/proc/${p.pid}/fd`).some((fd) => {
          try {
            return fs.readlinkSync(`/proc/${p.pid}/fd/${fd}`).startsWith(c.tmp + '/');
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    })
    .map((p) => ({ pid: p.pid, cmdline: p.cmdline }));
}

export interface Census {
  /** `start` or `delete` processes still running (they exit at once). */
  shims: string[];
  /** What the long-lived daemons still hold of finished containers (busyDaemonProblems). */
  daemons: string[];
  children: string[];
  mounts: string[];
  /** Bundle directories left in containerd's state dir. */
  bundles: string[];
  /** Sockets left in /run/containerd/s for the given groupings. */
  sockets: string[];
}

/** What one containerd's tasks left on the host; `groupings` are the ids (or sandbox ids) whose sockets must be gone. */
export function census(c: Containerd, groupings: Iterable<string> = [], ns = c.namespace): Census {
  const base = path.join(c.state, 'io.containerd.runtime.v2.task');
  const bundles: string[] = [];
  for (const n of safeReaddir(base)) for (const id of safeReaddir(path.join(base, n))) bundles.push(`${n}/${id}`);
  const sockets: string[] = [];
  for (const g of groupings) {
    const p = socketPathFor(c.address, ns, g);
    if (fs.existsSync(p)) sockets.push(`${g}: ${p}`);
  }
  return {
    shims: shimProcesses(c)
      .filter((p) => !p.daemon)
      .map((p) => `${p.pid} ${p.cmdline}`),
    daemons: busyDaemonProblems(c.address, c.tmp),
    children: wasmChildren(c).map((p) => `${p.pid} ${p.cmdline}`),
    mounts: listMounts(c.tmp).map((m) => `${m.mountPoint} (${m.fsType})`),
    bundles,
    sockets,
  };
}

export function censusProblems(x: Census): string[] {
  return [
    ...x.shims.map((s) => `shim process left: ${s}`),
    ...x.daemons,
    ...x.children.map((s) => `wasm child left: ${s}`),
    ...x.mounts.map((s) => `mount left: ${s}`),
    ...x.bundles.map((s) => `bundle dir left: ${s}`),
    ...x.sockets.map((s) => `shim socket left: ${s}`),
  ];
}

/** Polls the census until it is clean (a daemon lets go of a finished container's files within moments). */
export async function settledProblems(
  c: Containerd,
  groupings: Iterable<string>,
  timeoutMs = 10_000,
): Promise<string[]> {
  const list = [...groupings];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems = censusProblems(census(c, list));
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(100);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Lines of containerd's log (which carries the shims' log) written since `offset` bytes. */
export function logSince(c: Containerd, offset: number): string {
  const all = c.log();
  return all.slice(offset);
}

// ---------------------------------------------------------------------------
// a socket of the shared daemon, started by hand as containerd would (see test/frontend/cli.test.ts)

export interface HandDaemon {
  readonly id: string;
  readonly bundle: string;
  readonly address: string;
  /** The daemon serving the socket. */
  readonly pid: number;
  readonly conn: TtrpcClient;
  readonly task: ServiceClient<(typeof Task)['method']>;
  /** Shutdown (after the caller deleted its containers), wait for the socket to close, run `delete`. */
  stop(): Promise<void>;
}

/** Runs the shim binary like containerd (cwd = bundle). */
export function runShimAction(c: Containerd, args: string[], cwd: string, input?: Uint8Array) {
  const r = spawnSync(
    SHIM_BIN,
    ['-namespace', c.namespace, '-address', c.address, '-publish-binary', '/usr/bin/containerd', ...args],
    {
      cwd,
      input: input ?? Buffer.alloc(0), // a pipe: `start` goes through Node, which records the daemon in shim.pid
      env: { ...process.env, TTRPC_ADDRESS: c.ttrpcAddress },
      timeout: 20_000,
    },
  );
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
}

/**
 * `start` for a bundle of our own (a config.json whose process never runs: the
 * socket only needs a container id), then a ttrpc client on the socket.
 */
export async function startHandDaemon(c: Containerd, id: string): Promise<HandDaemon> {
  const bundle = bundleDir(c, id);
  fs.mkdirSync(bundle, { recursive: true });
  fs.writeFileSync(
    path.join(bundle, 'config.json'),
    JSON.stringify({ ociVersion: '1.0.2', process: { args: ['/x.wasm'] } }),
  );
  const r = runShimAction(c, ['-id', id, 'start'], bundle);
  if (r.code !== 0) throw new Error(`shim start failed (${r.code}): ${r.stderr}`);
  const address = r.stdout;
  const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
  const conn = await TtrpcClient.connect(address);
  const task = createClient(Task, conn);
  return {
    id,
    bundle,
    address,
    pid,
    conn,
    task,
    async stop() {
      try {
        await task.shutdown({ id });
      } catch {
        /* the connection may close under the call */
      }
      conn.close();
      const socketPath = address.replace(/^unix:\/\//, '');
      await until(`socket ${socketPath} to close`, () => !fs.existsSync(socketPath), 10_000);
      const d = runShimAction(c, ['-id', id, '-bundle', bundle, 'delete'], bundle);
      if (d.code !== 0) throw new Error(`shim delete failed (${d.code}): ${d.stderr}`);
      fs.rmSync(bundle, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// tiny Wasm modules written byte by byte

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...u32(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...u32(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

export interface TinyModule {
  /** Function imports, all of type () -> (). */
  imports?: [module: string, field: string][];
  /** Export a memory of one page as "memory" (default true). */
  memory?: boolean;
  /** Name the one defined function () -> () is exported as (default "_start"); null: not exported. */
  exportAs?: string | null;
  /** Its body: 'return' (default), or 'trap' (unreachable). */
  body?: 'return' | 'trap';
}

/** A minimal valid module: one type () -> (), the given imports, one function, optionally a memory. */
export function tinyWasm(m: TinyModule = {}): Buffer {
  const imports = m.imports ?? [];
  const withMemory = m.memory ?? true;
  const exportAs = m.exportAs === undefined ? '_start' : m.exportAs;
  const exports: number[][] = [];
  if (withMemory) exports.push([...name('memory'), 0x02, 0x00]);
  if (exportAs !== null) exports.push([...name(exportAs), 0x00, ...u32(imports.length)]); // defined funcs follow the imported ones
  const code = m.body === 'trap' ? [0x00, 0x00, 0x0b] : [0x00, 0x0b]; // no locals; unreachable? end
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, 0x00, 0x00]])),
    ...(imports.length
      ? section(2, vec(imports.map(([mod, field]) => [...name(mod), ...name(field), 0x00, 0x00])))
      : []),
    ...section(3, vec([[0x00]])),
    ...(withMemory ? section(5, vec([[0x00, 0x01]])) : []),
    ...(exports.length ? section(7, vec(exports)) : []),
    ...section(10, vec([[...u32(code.length), ...code]])),
  ];
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------
// a private containerd with an environment of our choosing (setupSuite takes none)

export interface EnvContainerd {
  readonly c: Containerd;
  readonly image: string;
  /** A unique container id. */
  id(label: string): string;
  readonly ids: string[];
  /** `ctr run --rm --runtime R [--platform P image | --config spec] [flags] id [args]`. */
  run(o: {
    id: string;
    args?: string[];
    flags?: string[];
    config?: string;
    rootfs?: string;
    timeoutMs?: number;
  }): Promise<CtrResult>;
  /** Kill + delete task and container, ignoring errors. */
  cleanup(id: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A private containerd (env added to its environment, every OTEL_* of ours
 * blanked) with the shim on its PATH and an image holding probe.wasm plus /data.
 */
export async function startEnvContainerd(
  name: string,
  env: Record<string, string>,
  files: { src: string; dest: string }[] = [],
): Promise<EnvContainerd> {
  await ensureBuilt();
  const shimDir = fs.mkdtempSync(path.join(os.tmpdir(), `wasmts-shimdir-${name}-`));
  fs.symlinkSync(SHIM_BIN, path.join(shimDir, 'containerd-shim-wasmts-v1'));
  const blank: Record<string, string> = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_') || k === 'TRACECONTEXT') blank[k] = '';
  let c: Containerd;
  try {
    c = await startContainerd({ shimDir, name, env: { ...blank, ...env } });
  } catch (err) {
    fs.rmSync(shimDir, { recursive: true, force: true });
    throw err;
  }
  const image = `docker.io/wasmts-hostile/${name}:v1`;
  try {
    const tar = path.join(c.tmp, 'image.tar');
    await packImage({ module: path.join(MODULES, 'probe.wasm'), files, ref: image, env: ['PATH=/'], output: tar });
    await c.importImage(tar, { timeoutMs: 30_000 });
  } catch (err) {
    await c.stop();
    fs.rmSync(shimDir, { recursive: true, force: true });
    throw err;
  }
  const ids: string[] = [];
  let n = 0;
  const cleanup = async (id: string) => {
    const q = { timeoutMs: 10_000 };
    await c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], q).catch(() => undefined);
    await c.ctr(['task', 'delete', '-f', id], q).catch(() => undefined);
    await c.ctr(['container', 'delete', id], q).catch(() => undefined);
  };
  return {
    c,
    image,
    ids,
    id(label) {
      const id = `${name}-${label}-${++n}`;
      ids.push(id);
      return id;
    },
    run(o) {
      const source = o.config
        ? ['--config', o.config]
        : o.rootfs
          ? ['--rootfs', o.rootfs]
          : ['--platform', PLATFORM, image];
      const args = [
        'run',
        '--rm',
        '--runtime',
        RUNTIME,
        ...(o.flags ?? []),
        ...source,
        o.id,
        ...(o.config ? [] : (o.args ?? [])),
      ];
      return c.ctr(args, { timeoutMs: o.timeoutMs ?? 30_000 });
    },
    cleanup,
    async stop() {
      try {
        await c.stop();
      } finally {
        fs.rmSync(shimDir, { recursive: true, force: true });
      }
    },
  };
}

/** Paths of the unix sockets the given processes hold (listening or connected), from /proc/net/unix. */
export function unixSocketPaths(pids: number[]): string[] {
  const byInode = new Map<string, string>();
  try {
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 8 && f[7].startsWith('/')) byInode.set(f[6], f[7]);
    }
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        const p = m && byInode.get(m[1]);
        if (p) out.add(p);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return [...out];
}
