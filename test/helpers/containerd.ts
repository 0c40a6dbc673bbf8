// A private containerd for end-to-end tests.
//
//   const c = await startContainerd({ shimDir: '/work/main/bin', name: 'e2e' });
//   try {
//     await c.importImage(tar);
//     const r = await c.ctr(['run', '--rm', '--runtime', 'io.containerd.wasmts.v1', ref, 'id1']);
//   } finally {
//     await c.stop();
//   }
//
// Everything lives in one temp dir (config, root, state, sockets, log), so
// instances never share state with each other or with a system containerd.
// Two things ARE shared between instances on one machine, because containerd
// or runc put them at fixed places: runc's state (/run/containerd/runc/<ns>/<id>)
// and the cgroup (/<ns>/<id>), both keyed by namespace + container id. So
// tests that may run concurrently must use distinct container ids, or give
// each instance its own `namespace`.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  mkdirSync,
  readlinkSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import * as path from 'node:path';
import { daemonPaths, isShimDaemon, keyFrom, lockHolder } from '../../src/handoff/handoff.js';

export interface StartContainerdOptions {
  /** Extra environment for containerd (and so for the shims it starts). */
  env?: Record<string, string>;
  /** Prepended to containerd's PATH so io.containerd.wasmts.v1 resolves to <shimDir>/containerd-shim-wasmts-v1. */
  shimDir?: string;
  /** Goes into the temp dir name, for humans. */
  name?: string;
  /** Default namespace for ctr(); default "default". */
  namespace?: string;
  /** 'auto' (default): overlayfs if an overlay mount works here, else native. */
  snapshotter?: 'auto' | 'overlayfs' | 'native';
  /** How long to wait for the socket to answer; default 15 s. */
  startTimeoutMs?: number;
  /** Enables the CRI plugin (disabled otherwise) with this configuration. */
  cri?: CriPluginOptions;
}

export interface CriPluginOptions {
  /** The pod sandbox image; import it before the first pod, or the plugin tries to pull it. */
  sandboxImage: string;
  /** CRI runtime handlers: handler name → runtime_type (e.g. wasmts → io.containerd.wasmts.v1). */
  runtimes: Record<string, string>;
}

export interface CtrOptions {
  input?: string | Buffer;
  /** Default 30 s; on expiry ctr is killed and the promise rejects. */
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

export interface Containerd {
  readonly name: string;
  /** The temp dir holding everything below. */
  readonly tmp: string;
  readonly root: string;
  readonly state: string;
  /** gRPC socket path (no unix:// prefix), what `ctr --address` takes. */
  readonly address: string;
  readonly ttrpcAddress: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly namespace: string;
  /** 'overlayfs' or 'native': what ctr() uses (CONTAINERD_SNAPSHOTTER). */
  readonly snapshotter: string;
  /** containerd's pid (changes on restart()). */
  readonly pid: number;
  /** Run `ctr --address <sock> --namespace <ns> ...args`. Resolves with any exit code; rejects on timeout. */
  ctr(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  /** Like ctr() but rejects when the exit code is not 0. */
  ctrOk(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  /** Spawn ctr and hand back the child (for long-running `ctr run`); caller owns it. */
  ctrSpawn(
    args: string[],
    opts?: { env?: Record<string, string>; namespace?: string; stdio?: SpawnOptions['stdio'] },
  ): ChildProcess;
  /** `ctr image import --all-platforms <tar>`; rejects on failure. */
  importImage(tarPath: string, opts?: CtrOptions): Promise<CtrResult>;
  /** SIGTERM containerd, wait, start it again with the same config (shims keep running). */
  restart(): Promise<void>;
  /** Kill and delete remaining tasks, stop containerd, kill leftover shims, unmount, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** containerd's log (stdout+stderr); the last tailBytes only if given. */
  log(tailBytes?: number): string;
}

const CTR_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const SOCKET_PATH_MAX = 107;

// ---------------------------------------------------------------------------
// leak-check helpers

export interface ProcessInfo {
  pid: number;
  /** argv joined with spaces. */
  cmdline: string;
  argv: string[];
}

/** Processes (other than this one) whose command line matches pattern. */
export function listProcesses(pattern: RegExp): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const pid = Number(ent);
    if (pid === process.pid) continue;
    let raw: Buffer;
    try {
      raw = readFileSync(`/proc/${ent}/cmdline`);
    } catch {
      continue; // gone, or a kernel thread we cannot read
    }
    if (raw.length === 0) continue; // kernel thread or zombie
    const argv = raw.toString('utf8').replace(/\0$/, '').split('\0');
    const cmdline = argv.join(' ');
    pattern.lastIndex = 0;
    if (pattern.test(cmdline)) out.push({ pid, cmdline, argv });
  }
  return out;
}

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mounts (from /proc/self/mountinfo) at `under` or below it. */
export function listMounts(under: string): MountInfo[] {
  const base = path.resolve(under).replace(/\/+$/, '');
  const out: MountInfo[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right = ''] = line.split(' - ');
    const f = left.split(' ');
    const mountPoint = unescapeMount(f[4] ?? '');
    const [fsType = '', source = '', options = ''] = right.split(' ');
    if (mountPoint === base || mountPoint.startsWith(base + '/')) {
      out.push({ mountPoint, fsType, source: unescapeMount(source), options });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// internals

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie still answers kill(0); treat it as dead
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function killQuiet(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** Unmount everything at or below dir, deepest first (lazy unmount as a last resort). */
function unmountAll(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const mounts = listMounts(dir).sort((a, b) => b.mountPoint.length - a.mountPoint.length);
    if (mounts.length === 0) return;
    for (const m of mounts) {
      const r = spawnSync('umount', [m.mountPoint], { stdio: 'ignore' });
      if (r.status !== 0) spawnSync('umount', ['-l', m.mountPoint], { stdio: 'ignore' });
    }
  }
}

/**
 * runc keeps its state in /run/containerd/runc/<ns>/<id> and ctr puts cgroups
 * at /<ns>/<id>; runc removes the <id> level but leaves the empty <ns> dirs.
 * Remove those (rmdir only succeeds when empty) for namespaces other than
 * "default", which other containerds on the machine are likely to share.
 */
function removeNamespaceDirs(namespaces: string[]): void {
  let controllers: string[] = [];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    /* no cgroupfs */
  }
  for (const ns of namespaces) {
    if (ns === 'default' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(ns)) continue;
    for (const d of [
      `/run/containerd/runc/${ns}`,
      `/sys/fs/cgroup/${ns}`,
      ...controllers.map((c) => `/sys/fs/cgroup/${c}/${ns}`),
    ]) {
      try {
        rmdirSync(d);
      } catch {
        /* absent, not empty, or not ours */
      }
    }
  }
}

/** pids plus all their descendants (from /proc/<pid>/stat ppid). */
export function descendants(pids: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const st = readFileSync(`/proc/${ent}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(ent));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  const out = new Set<number>();
  const queue = [...pids];
  while (queue.length) {
    const p = queue.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    queue.push(...(children.get(p) ?? []));
  }
  return [...out];
}

let overlayProbe: boolean | undefined;

/** Can we mount overlayfs on the fs holding `dir`? (Fails e.g. on an overlay root in some sandboxes.) */
export function overlayWorks(dir: string): boolean {
  if (overlayProbe !== undefined) return overlayProbe;
  const t = mkdtempSync(path.join(dir, 'overlay-probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(path.join(t, d));
    writeFileSync(path.join(t, 'lower', 'f'), 'x');
    const r = spawnSync(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `lowerdir=${t}/lower,upperdir=${t}/upper,workdir=${t}/work`, `${t}/merged`],
      { stdio: 'ignore' },
    );
    overlayProbe = r.status === 0 && existsSync(path.join(t, 'merged', 'f'));
    if (r.status === 0) spawnSync('umount', [`${t}/merged`], { stdio: 'ignore' });
  } catch {
    overlayProbe = false;
  } finally {
    unmountAll(t);
    rmSync(t, { recursive: true, force: true });
  }
  return overlayProbe;
}

function tomlString(s: string): string {
  return JSON.stringify(s); // TOML basic strings accept JSON escapes for our paths
}

/**
 * The CRI plugin's section (config version 2, containerd 1.6/1.7). Its own
 * state lives under root/state; CNI dirs point into the temp dir, where none
 * is configured (host-network pods need no CNI); the streaming server takes a
 * free port (the default "0"), so instances do not collide.
 */
function criPluginConfig(cri: CriPluginOptions, tmp: string, snapshotter: string): string[] {
  const cfg = '[plugins."io.containerd.grpc.v1.cri"]';
  const lines = [
    `  ${cfg}`,
    `    sandbox_image = ${tomlString(cri.sandboxImage)}`,
    `    [plugins."io.containerd.grpc.v1.cri".cni]`,
    `      bin_dir = ${tomlString(path.join(tmp, 'cni', 'bin'))}`,
    `      conf_dir = ${tomlString(path.join(tmp, 'cni', 'net.d'))}`,
    `    [plugins."io.containerd.grpc.v1.cri".containerd]`,
    `      snapshotter = ${tomlString(snapshotter)}`,
  ];
  // Naming any runtime replaces the plugin's default map, whose runc entry the default handler needs.
  for (const [handler, runtimeType] of Object.entries({ runc: 'io.containerd.runc.v2', ...cri.runtimes })) {
    if (!/^[A-Za-z0-9_-]+$/.test(handler))
      throw new Error(
        `startContainerd: CRI runtime handler name ${JSON.stringify(handler)} needs quoting; use [A-Za-z0-9_-]`,
      );
    lines.push(
      `      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${handler}]`,
      `        runtime_type = ${tomlString(runtimeType)}`,
    );
  }
  return [...lines, ''];
}

const live = new Set<{ syncCleanup(): void }>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.syncCleanup();
      } catch {
        /* best effort */
      }
    }
  });
}

// ---------------------------------------------------------------------------

export async function startContainerd(opts: StartContainerdOptions = {}): Promise<Containerd> {
  const name = (opts.name ?? 'test').replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 24);
  const tmp = mkdtempSync(path.join(tmpdir(), `wasmts-ctrd-${name}-`));
  const root = path.join(tmp, 'root');
  const state = path.join(tmp, 'state');
  const address = path.join(tmp, 'containerd.sock');
  const ttrpcAddress = `${address}.ttrpc`;
  const configPath = path.join(tmp, 'config.toml');
  const logPath = path.join(tmp, 'containerd.log');
  const namespace = opts.namespace ?? 'default';
  if (ttrpcAddress.length > SOCKET_PATH_MAX) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(
      `startContainerd: socket path ${ttrpcAddress} is longer than ${SOCKET_PATH_MAX} bytes; set TMPDIR to a shorter directory`,
    );
  }

  let snapshotter: string;
  if (opts.snapshotter === 'overlayfs' || opts.snapshotter === 'native') snapshotter = opts.snapshotter;
  else snapshotter = overlayWorks(tmp) ? 'overlayfs' : 'native';

  writeFileSync(
    configPath,
    [
      'version = 2',
      `root = ${tomlString(root)}`,
      `state = ${tomlString(state)}`,
      `temp = ${tomlString(path.join(tmp, 'temp'))}`,
      opts.cri ? 'disabled_plugins = []' : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '',
      '[grpc]',
      `  address = ${tomlString(address)}`,
      '',
      '[ttrpc]',
      `  address = ${tomlString(ttrpcAddress)}`,
      '',
      '[debug]',
      '  level = "debug"',
      '',
      '[plugins]',
      '  [plugins."io.containerd.internal.v1.opt"]',
      `    path = ${tomlString(path.join(tmp, 'opt'))}`,
      '',
      ...(opts.cri ? criPluginConfig(opts.cri, tmp, snapshotter) : []),
    ].join('\n'),
  );
  mkdirSync(path.join(tmp, 'temp'));

  const basePath = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const daemonEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: opts.shimDir ? `${path.resolve(opts.shimDir)}:${basePath}` : basePath,
    ...opts.env,
  };
  // Our own client settings must not leak into the daemon's idea of things.
  delete daemonEnv.CONTAINERD_ADDRESS;
  delete daemonEnv.CONTAINERD_NAMESPACE;

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;

  const ctrEnv = (extra?: Record<string, string>): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERD_SNAPSHOTTER: snapshotter, ...extra };
    delete env.CONTAINERD_ADDRESS;
    return env;
  };

  const ctr = (args: string[], o: CtrOptions = {}): Promise<CtrResult> => {
    const ns = o.namespace ?? namespace;
    const timeoutMs = o.timeoutMs ?? CTR_TIMEOUT_MS;
    const full = ['--address', address, '--namespace', ns, ...args];
    return new Promise((resolve, reject) => {
      const p = spawn('ctr', full, {
        env: ctrEnv(o.env),
        stdio: [o.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout!.on('data', (b: Buffer) => out.push(b));
      p.stderr!.on('data', (b: Buffer) => err.push(b));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        p.kill('SIGKILL');
      }, timeoutMs);
      p.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`ctr ${args.join(' ')}: ${e.message}`));
      });
      p.on('close', (code, signal) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        if (timedOut) {
          reject(
            new Error(
              `ctr ${args.join(' ')} timed out after ${timeoutMs} ms (killed)\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
            ),
          );
          return;
        }
        resolve({ code: code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : -1), signal, stdout, stderr });
      });
      if (o.input !== undefined) {
        p.stdin!.on('error', () => {}); // ctr may exit before reading it all
        p.stdin!.end(o.input);
      }
    });
  };

  const ctrOk = async (args: string[], o?: CtrOptions): Promise<CtrResult> => {
    const r = await ctr(args, o);
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  };

  const ctrSpawn: Containerd['ctrSpawn'] = (args, o = {}) =>
    spawn('ctr', ['--address', address, '--namespace', o.namespace ?? namespace, ...args], {
      env: ctrEnv(o.env),
      stdio: o.stdio ?? ['pipe', 'pipe', 'pipe'],
    });

  const log = (tailBytes?: number): string => {
    let s: string;
    try {
      s = readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
    return tailBytes !== undefined && s.length > tailBytes ? s.slice(-tailBytes) : s;
  };

  const launch = async (): Promise<void> => {
    const fd = openSync(logPath, 'a');
    let c: ChildProcess;
    try {
      c = spawn('containerd', ['--config', configPath], { env: daemonEnv, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    child = c;
    let done = false;
    let spawnError: Error | undefined;
    exited = new Promise<void>((resolve) => {
      c.on('exit', () => {
        done = true;
        resolve();
      });
      c.on('error', (e) => {
        spawnError = e;
        done = true;
        resolve();
      });
    });
    c.unref();
    const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
    for (;;) {
      if (done)
        throw new Error(
          `containerd exited during startup${spawnError ? `: ${spawnError.message}` : ''}\n--- containerd log ---\n${log(4000)}`,
        );
      if (existsSync(address)) {
        const r = await ctr(['version'], { timeoutMs: 5_000 }).catch(() => undefined);
        if (r?.code === 0) return;
      }
      if (Date.now() > deadline) {
        killQuiet(c.pid!, 'SIGKILL');
        throw new Error(
          `containerd did not answer on ${address} within ${opts.startTimeoutMs ?? 15_000} ms\n--- containerd log ---\n${log(4000)}`,
        );
      }
      await sleep(50);
    }
  };

  const terminate = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };

  /** Task bundles in our state dir: <state>/io.containerd.runtime.v2.task/<ns>/<id>. */
  const bundles = (): { ns: string; id: string; dir: string; socket?: string }[] => {
    const out: { ns: string; id: string; dir: string; socket?: string }[] = [];
    const base = path.join(state, 'io.containerd.runtime.v2.task');
    let nss: string[] = [];
    try {
      nss = readdirSync(base);
    } catch {
      return out;
    }
    for (const ns of nss) {
      let ids: string[] = [];
      try {
        ids = readdirSync(path.join(base, ns));
      } catch {
        continue;
      }
      for (const id of ids) {
        const dir = path.join(base, ns, id);
        let socket: string | undefined;
        try {
          const a = readFileSync(path.join(dir, 'address'), 'utf8').trim();
          if (a.startsWith('unix://')) socket = a.slice('unix://'.length);
        } catch {
          /* no address file */
        }
        out.push({ ns, id, dir, ...(socket ? { socket } : {}) });
      }
    }
    return out;
  };

  /** Shims (and anything else) still referring to our socket or temp dir. */
  const leftovers = () =>
    listProcesses(new RegExp(`(^|\\s)-address ${escapeRe(address)}(\\s|$)|${escapeRe(tmp)}/`)).filter(
      (p) => !(child && p.pid === child.pid),
    );

  /** Leftover shims plus all their descendants (task processes), collected before any signal so reparenting cannot hide them. */
  const leftoverTree = (): number[] => descendants(leftovers().map((p) => p.pid));

  /**
   * The state dirs (/run/wasmts/<key>) of this containerd's daemons, noted while
   * they run: its temp address makes every key new, so a dir left by a killed
   * daemon would never be used again.
   */
  const keyDirs = new Set<string>();
  const noteKeyDirs = (): void => {
    for (const d of shimDaemons(address)) {
      const key = daemonKey(d.pid);
      if (key) keyDirs.add(daemonPaths(key).dir);
    }
  };
  const removeKeyDirs = (): void => {
    for (const dir of keyDirs)
      if (lockHolder(path.join(dir, 'lock')) === undefined) rmSync(dir, { recursive: true, force: true });
  };

  const finalCleanup = (): void => {
    const bs = bundles();
    for (const pid of leftoverTree()) killQuiet(pid, 'SIGKILL');
    // runc state of our tasks (runc keeps it outside our temp dir); only when it names our bundle
    for (const b of bs) {
      const runcRoot = `/run/containerd/runc/${b.ns}`;
      try {
        if (!readFileSync(path.join(runcRoot, b.id, 'state.json'), 'utf8').includes(`"bundle=${b.dir}"`)) continue;
      } catch {
        continue;
      }
      spawnSync('runc', ['--root', runcRoot, 'delete', '--force', b.id], { stdio: 'ignore', timeout: 10_000 });
    }
    unmountAll(tmp);
    for (const b of bs) {
      try {
        if (b.socket && statSync(b.socket).isSocket()) unlinkSync(b.socket);
      } catch {
        /* gone */
      }
    }
    removeKeyDirs();
    rmSync(tmp, { recursive: true, force: true });
  };

  const handle = {
    syncCleanup(): void {
      noteKeyDirs();
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null)
        killQuiet(child.pid, 'SIGKILL');
      const nss = [...new Set([namespace, ...bundles().map((b) => b.ns)])];
      finalCleanup();
      removeNamespaceDirs(nss);
    },
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    live.delete(handle);
    let nss: string[] = [namespace];
    noteKeyDirs();
    try {
      if (child && child.exitCode === null && child.signalCode === null) {
        // kill and delete whatever tasks remain, in every namespace
        const nsr = await ctr(['namespaces', 'ls', '-q'], { timeoutMs: 5_000 }).catch(() => undefined);
        if (nsr?.code === 0)
          nss = nsr.stdout
            .split('\n')
            .map((s) => s.trim())
            .filter(Boolean);
        for (const ns of nss) {
          const tr = await ctr(['tasks', 'ls', '-q'], { namespace: ns, timeoutMs: 5_000 }).catch(() => undefined);
          const tasks =
            tr?.code === 0
              ? tr.stdout
                  .split('\n')
                  .map((s) => s.trim())
                  .filter(Boolean)
              : [];
          await Promise.all(
            tasks.map((t) =>
              ctr(['tasks', 'kill', '--all', '-s', 'SIGKILL', t], { namespace: ns, timeoutMs: 5_000 }).catch(
                () => undefined,
              ),
            ),
          );
          await Promise.all(
            tasks.map((t) =>
              ctr(['tasks', 'delete', '--force', t], { namespace: ns, timeoutMs: 10_000 }).catch(() => undefined),
            ),
          );
          const cr = await ctr(['containers', 'ls', '-q'], { namespace: ns, timeoutMs: 5_000 }).catch(() => undefined);
          const cs =
            cr?.code === 0
              ? cr.stdout
                  .split('\n')
                  .map((s) => s.trim())
                  .filter(Boolean)
              : [];
          if (cs.length)
            await ctr(['containers', 'delete', ...cs], { namespace: ns, timeoutMs: 10_000 }).catch(() => undefined);
        }
      }
      await terminate();
      // Shims of tasks we could not delete keep running without containerd:
      // SIGTERM them, then SIGKILL them and everything they started.
      const tree = leftoverTree();
      if (tree.length) {
        for (const p of leftovers()) killQuiet(p.pid, 'SIGTERM');
        for (let i = 0; i < 5 && tree.some(alive); i++) await sleep(50);
        for (const pid of tree) killQuiet(pid, 'SIGKILL');
      }
    } finally {
      nss = [...new Set([...nss, ...bundles().map((b) => b.ns)])];
      finalCleanup();
      removeNamespaceDirs(nss);
    }
  };

  const restart = async (): Promise<void> => {
    if (stopped) throw new Error('restart() after stop()');
    await terminate();
    await launch();
  };

  installExitHook();
  live.add(handle);
  try {
    await launch();
    if (snapshotter !== 'overlayfs') {
      // Go clients other than ctr read the default snapshotter from this namespace label.
      await ctr(['namespaces', 'create', namespace], { timeoutMs: 5_000 }).catch(() => undefined);
      await ctr(['namespaces', 'label', namespace, `containerd.io/defaults/snapshotter=${snapshotter}`], {
        timeoutMs: 5_000,
      }).catch(() => undefined);
    }
  } catch (err) {
    live.delete(handle);
    stopped = true;
    handle.syncCleanup();
    throw err;
  }

  return {
    name,
    tmp,
    root,
    state,
    address,
    ttrpcAddress,
    configPath,
    logPath,
    namespace,
    snapshotter,
    get pid() {
      return child?.pid ?? -1;
    },
    ctr,
    ctrOk,
    ctrSpawn,
    importImage: (tarPath, o) => ctrOk(['images', 'import', '--all-platforms', tarPath], o),
    restart,
    stop,
    log,
  };
}

export { alive as processAlive };

/** The long-lived shim daemons of the containerd at `address` (see src/handoff/handoff.ts). */
export function shimDaemons(address: string): ProcessInfo[] {
  return listProcesses(/shim\.cjs/).filter((p) => isShimDaemon(p.argv) && p.argv.includes(address));
}

/** The key a daemon serves (its _WASMTS_KEY); undefined for a standalone daemon or one that is gone. */
export function daemonKey(pid: number): string | undefined {
  try {
    const env: Record<string, string> = {};
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return keyFrom(env);
  } catch {
    return undefined;
  }
}

/**
 * What idle daemons must not hold once their containers are gone: a file
 * under `dir` (a bundle's log FIFO, a rootfs), or a child besides the one
 * warm Wasm child; and one key must not keep two daemons (a second one, not
 * holding the key's lock, leaves with its last socket).
 */
export function busyDaemonProblems(address: string, dir: string): string[] {
  const problems: string[] = [];
  const byKey = new Map<string, number[]>();
  for (const d of shimDaemons(address)) {
    const key = daemonKey(d.pid) ?? `standalone ${d.pid}`;
    byKey.set(key, [...(byKey.get(key) ?? []), d.pid]);
  }
  for (const [key, pids] of byKey)
    if (pids.length > 1) problems.push(`${pids.length} daemons for key ${key.slice(0, 12)}: ${pids.join(', ')}`);
  for (const d of shimDaemons(address)) {
    for (const target of openFiles(d.pid)) {
      if (target.startsWith(`${dir}/`)) problems.push(`daemon ${d.pid} still holds ${target}`);
    }
    const kids = childPids(d.pid);
    if (kids.length > 1)
      problems.push(`daemon ${d.pid} has ${kids.length} children (one warm Wasm child expected): ${kids.join(', ')}`);
  }
  return problems;
}

function openFiles(pid: number): string[] {
  const out: string[] = [];
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // gone
  }
  return out;
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}
