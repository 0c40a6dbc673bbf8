// A private containerd for end-to-end tests, the demo, the bench and the soak.
//
//   const c = await startContainerd({ shimDir: BIN_DIR, name: 'e2e' });
//   try {
//     await c.importImage(tar);
//     const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, ref, 'id1']);
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
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bundleDirIn, socketPathFor } from './bundles.js';
import { DEFAULT_NAMESPACE } from './constants.js';
import { containerdConfig, type CriPluginOptions } from './containerd-config.js';
import { killShims, noteDaemonDirs, removeTasks, sweep, type SweepTarget } from './containerd-cleanup.js';
import {
  checkCtr,
  runCtr,
  spawnCtr,
  type CtrOptions,
  type CtrResult,
  type CtrSpawnOptions,
  type CtrTarget,
} from './ctr.js';
import { overlayWorks } from './mounts.js';
import { killQuiet } from './processes.js';
import { sleep } from './wait.js';

export type { CriPluginOptions } from './containerd-config.js';

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
  /** Where the temp dir goes; default os.tmpdir(). */
  parentDir?: string;
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
  ctrSpawn(args: string[], opts?: CtrSpawnOptions): ChildProcess;
  /** `ctr image import --all-platforms <tar>`; rejects on failure. */
  importImage(tarPath: string, opts?: CtrOptions): Promise<CtrResult>;
  /** A task's bundle dir: <state>/io.containerd.runtime.v2.task/<ns>/<id>. */
  bundleDir(id: string, namespace?: string): string;
  /** The shim socket of a container (or a pod's sandbox id). */
  socketFor(grouping: string, namespace?: string): string;
  /** SIGTERM containerd, wait, start it again with the same config (shims keep running). */
  restart(): Promise<void>;
  /** Kill and delete remaining tasks, stop containerd, kill leftover shims, unmount, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** containerd's log (stdout+stderr); the last tailBytes only if given. */
  log(tailBytes?: number): string;
}

const STOP_GRACE_MS = 5_000;
const SOCKET_PATH_MAX = 107;

/** Set-ups not stopped yet: swept synchronously if the process exits first. */
const live = new Set<() => void>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const sweepNow of live) {
      try {
        sweepNow();
      } catch {
        /* best effort */
      }
    }
  });
}

function chooseSnapshotter(want: StartContainerdOptions['snapshotter'], tmp: string): string {
  if (want === 'overlayfs' || want === 'native') return want;
  return overlayWorks(tmp) ? 'overlayfs' : 'native';
}

function containerdEnv(opts: StartContainerdOptions): NodeJS.ProcessEnv {
  const basePath = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: opts.shimDir ? `${path.resolve(opts.shimDir)}:${basePath}` : basePath,
    ...opts.env,
  };
  // Our own client settings must not leak into the daemon's idea of things.
  delete env.CONTAINERD_ADDRESS;
  delete env.CONTAINERD_NAMESPACE;
  return env;
}

export async function startContainerd(opts: StartContainerdOptions = {}): Promise<Containerd> {
  const name = (opts.name ?? 'test').replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 24);
  const tmp = mkdtempSync(path.join(opts.parentDir ?? tmpdir(), `wasmts-ctrd-${name}-`));
  const address = path.join(tmp, 'containerd.sock');
  const layout = { tmp, root: path.join(tmp, 'root'), state: path.join(tmp, 'state'), address };
  const ttrpcAddress = `${address}.ttrpc`;
  const configPath = path.join(tmp, 'config.toml');
  const logPath = path.join(tmp, 'containerd.log');
  const namespace = opts.namespace ?? DEFAULT_NAMESPACE;
  if (ttrpcAddress.length > SOCKET_PATH_MAX) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(
      `startContainerd: socket path ${ttrpcAddress} is longer than ${SOCKET_PATH_MAX} bytes; set TMPDIR to a shorter directory`,
    );
  }
  const snapshotter = chooseSnapshotter(opts.snapshotter, tmp);
  writeFileSync(configPath, containerdConfig({ ...layout, ttrpcAddress }, snapshotter, opts.cri));
  mkdirSync(path.join(tmp, 'temp'));
  const daemonEnv = containerdEnv(opts);
  const target: CtrTarget = { address, namespace, snapshotter };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;

  const ctr = (args: string[], o?: CtrOptions) => runCtr(target, args, o);
  const ctrOk = async (args: string[], o?: CtrOptions) => checkCtr(args, await ctr(args, o));

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
    const timeoutMs = opts.startTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
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
        if (c.pid !== undefined) killQuiet(c.pid, 'SIGKILL');
        throw new Error(
          `containerd did not answer on ${address} within ${timeoutMs} ms\n--- containerd log ---\n${log(4000)}`,
        );
      }
      await sleep(50);
    }
  };

  const running = (): boolean => !!child && child.exitCode === null && child.signalCode === null;

  const terminate = async (): Promise<void> => {
    const c = child;
    if (!c || !running() || c.pid === undefined) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };

  const sweepTarget: SweepTarget = { tmp, address, state: layout.state, containerdPid: () => child?.pid };
  /** The state dirs (/run/wasmts/<key>) of this containerd's daemons, noted while they run. */
  const daemonDirs = new Set<string>();
  const syncSweep = (): void => {
    noteDaemonDirs(address, daemonDirs);
    if (running() && child?.pid !== undefined) killQuiet(child.pid, 'SIGKILL');
    sweep(sweepTarget, [namespace], daemonDirs);
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    live.delete(syncSweep);
    let namespaces = [namespace];
    noteDaemonDirs(address, daemonDirs);
    try {
      if (running()) namespaces = await removeTasks(ctr, namespaces);
      await terminate();
      await killShims(sweepTarget);
    } finally {
      sweep(sweepTarget, namespaces, daemonDirs);
    }
  };

  installExitHook();
  live.add(syncSweep);
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
    live.delete(syncSweep);
    stopped = true;
    syncSweep();
    throw err;
  }

  return {
    name,
    ...layout,
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
    ctrSpawn: (args, o) => spawnCtr(target, args, o),
    importImage: (tarPath, o) => ctrOk(['images', 'import', '--all-platforms', tarPath], o),
    bundleDir: (id, ns = namespace) => bundleDirIn(layout.state, ns, id),
    socketFor: (grouping, ns = namespace) => socketPathFor(address, ns, grouping),
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      await terminate();
      await launch();
    },
    stop,
    log,
  };
}
