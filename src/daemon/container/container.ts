// A container in this daemon: its bundle, its mounted rootfs, the init
// process and its execs. Creating one turns the bundle into a prepared Wasm
// child; anything that fails on the way is undone before the error goes back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine, ExitInfo, ModuleSpec } from '../engine/engine.js';
import { ModuleError } from '../engine/engine.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, ShimError } from '../errors.js';
import {
  unmountRootfs,
  bindMountsOf,
  bindRootfs,
  makeReadOnly,
  mountBinds,
  mountSnapshot,
  USER_ROOTS,
  type SnapshotMount,
  openCgroup,
  type Cgroup,
} from '../../host/index.js';
import { resolveEntrypoint, type Entrypoint } from './entrypoint.js';
import { PAUSE_MODULE } from '../../child/pause-module.js';
import { Process } from './process.js';
import {
  checkProcess,
  readSpec,
  removeExecPid,
  removeInitPid,
  rootfsPath,
  SpecError,
  writeExecPid,
  writeInitPid,
  writePauseModule,
  writeShimPid,
  type LinuxResources,
  type OciProcess,
  type OciSpec,
  CONTAINER_TYPE_ANNOTATION,
  namespaceOfBundle,
} from '../../bundle/index.js';
import { checkStdio, holdOutputs, openStdin, type StdioPaths } from './stdio.js';
import type { ChildTraceContext } from '../../telemetry/propagation.js';

export interface CreateParams {
  id: string;
  bundle: string;
  rootfs: SnapshotMount[];
  stdio: StdioPaths;
  trace?: ChildTraceContext;
}

export interface ExecParams {
  execId: string;
  stdio: StdioPaths;
  /** As the Exec request carried it: checked here (checkProcess). */
  process: unknown;
  trace?: ChildTraceContext;
}

export type ExitListener = (container: Container, process: Process, exit: ExitInfo) => void;

const SIGKILL = 9;

/**
 * What went wrong while preparing, as the ShimError containerd shows: a bad
 * bundle or module is the caller's to fix; anything else is unexpected. Both
 * name the container (ShimErrors raised on the way already do).
 */
function asShimError(err: unknown, who: string): ShimError {
  if (err instanceof ShimError) return err;
  if (err instanceof SpecError || err instanceof ModuleError)
    return invalidArgument(`${who}: ${err.message}`, { cause: err });
  return new ShimError('unknown', `${who}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export class Container {
  readonly execs = new Map<string, Process>();
  readonly annotations: Record<string, string>;
  init!: Process;
  /** Absent where cgroups are not usable (or the spec names none). */
  readonly cgroup: Cgroup | undefined;
  private oomKillsSeen = 0;
  /** Where Create's time went (ms), for the log: mounting, then the child's compile and instantiate. */
  createTimings = { mountMs: 0, prepareMs: 0 };
  private userRoot: string | undefined;

  private constructor(
    readonly id: string,
    readonly bundle: string,
    readonly rootfs: string,
    readonly spec: OciSpec,
    private readonly engine: Engine,
    private readonly onExit: ExitListener,
  ) {
    this.annotations = { ...(spec.annotations ?? {}) };
    this.cgroup = openCgroup(spec.linux?.cgroupsPath);
    this.oomKillsSeen = this.cgroup?.oomKills() ?? 0;
  }

  /** Applies resource limits to the container's cgroup (Create and Update). */
  applyResources(resources: LinuxResources | undefined): void {
    if (!resources || !this.cgroup) return;
    try {
      this.cgroup.apply(resources);
    } catch (err) {
      throw invalidArgument(
        `container ${this.id}: cannot apply resources to cgroup ${this.cgroup.path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** True once per kernel OOM kill in the container's cgroup since the last call. */
  takeOomKill(): boolean {
    const now = this.cgroup?.oomKills() ?? 0;
    const fresh = now > this.oomKillsSeen;
    this.oomKillsSeen = now;
    return fresh;
  }

  static async create(params: CreateParams, engine: Engine, onExit: ExitListener): Promise<Container> {
    const who = `container ${params.id}`;
    let container: Container | undefined;
    let mounted = false;
    try {
      checkStdio(params.stdio, who);
      const spec = readSpec(params.bundle);
      const proc = spec.process;
      const rootfs = rootfsPath(params.bundle, spec.root?.path);
      container = new Container(params.id, params.bundle, rootfs, spec, engine, onExit);
      mounted = true;
      container.applyResources(spec.linux?.resources);
      const t0 = performance.now();
      await mountSnapshot(params.bundle, rootfs, params.rootfs);
      await mountBinds(params.bundle, rootfs, bindMountsOf(spec.mounts));
      if (spec.root?.readonly) await makeReadOnly(params.bundle, rootfs);
      const t1 = performance.now();
      container.init = await container.spawn('', proc, params.stdio, params.trace);
      container.createTimings = { mountMs: round(t1 - t0), prepareMs: round(performance.now() - t1) };
      writeInitPid(params.bundle, container.init.pid);
      writeShimPid(params.bundle, process.pid);
      return container;
    } catch (err) {
      if (mounted) await unmountRootfs(params.bundle);
      await container?.cgroup?.destroy();
      throw asShimError(err, who);
    }
  }

  async exec(params: ExecParams): Promise<Process> {
    const who = `exec ${params.execId} in container ${this.id}`;
    if (this.execs.has(params.execId)) throw alreadyExists(`${who}: exec id already exists`);
    if (!this.init.alive) throw failedPrecondition(`${who}: container is not running`);
    try {
      checkStdio(params.stdio, who);
      const proc = checkProcess(params.process, who);
      const process = await this.spawn(params.execId, proc, params.stdio, params.trace);
      if (this.execs.has(params.execId)) {
        process.kill(SIGKILL);
        throw alreadyExists(`${who}: exec id already exists`);
      }
      this.execs.set(params.execId, process);
      writeExecPid(this.bundle, params.execId, process.pid);
      return process;
    } catch (err) {
      throw asShimError(err, who);
    }
  }

  process(execId: string): Process {
    if (!execId) return this.init;
    const p = this.execs.get(execId);
    if (!p) throw notFound(`exec ${execId} not found in container ${this.id}`);
    return p;
  }

  /** Every process that may still run: init first. */
  processes(): Process[] {
    return [this.init, ...this.execs.values()];
  }

  removeExec(execId: string): void {
    this.execs.delete(execId);
    removeExecPid(this.bundle, execId);
  }

  /** Tears down what Create set up; the init process must be gone. */
  async destroy(): Promise<void> {
    for (const p of this.execs.values()) if (p.alive) safeKill(p);
    await unmountRootfs(this.bundle);
    await this.cgroup?.destroy();
    removeInitPid(this.bundle);
  }

  /**
   * The rootfs as a non-root user can reach it: containerd's bundle directory
   * is 0700, and node:wasi opens every guest path by its full host path, so a
   * module running as another user would be refused its own files. A bind
   * mount of the rootfs under a traversable directory fixes the path.
   */
  private async userVisibleRoot(): Promise<string> {
    if (!this.userRoot) {
      fs.mkdirSync(USER_ROOTS, { recursive: true, mode: 0o711 });
      fs.chmodSync(USER_ROOTS, 0o711);
      fs.chmodSync(path.dirname(USER_ROOTS), 0o711); // a daemon may have created /run/wasmts 0700 (its key dirs below stay 0700)
      const point = path.join(USER_ROOTS, `${namespaceOfBundle(this.bundle)}-${this.id}`);
      fs.mkdirSync(point, { recursive: true, mode: 0o711 });
      await bindRootfs(this.bundle, this.rootfs, point);
      this.userRoot = point;
    }
    return this.userRoot;
  }

  /** The pod's sandbox container (CRI): its image's native pause binary is replaced by a Wasm one. */
  private isPodSandbox(): boolean {
    return this.annotations[CONTAINER_TYPE_ANNOTATION] === 'sandbox';
  }

  private pauseEntrypoint(): Entrypoint {
    return { hostPath: writePauseModule(this.bundle, PAUSE_MODULE), guestPath: '/pause', exportName: '_start' };
  }

  private async spawn(
    execId: string,
    proc: OciProcess,
    stdio: StdioPaths,
    trace?: ChildTraceContext,
  ): Promise<Process> {
    const cwd = proc.cwd || '/';
    const env = withPwd(proc.env ?? [], cwd);
    const entry =
      !execId && this.isPodSandbox() ? this.pauseEntrypoint() : resolveEntrypoint(this.rootfs, proc.args[0], cwd, env);
    const release = holdOutputs(stdio);
    const stdin = openStdin(stdio.stdin, `container ${this.id}`);
    const spec: ModuleSpec = {
      containerId: this.id,
      execId,
      modulePath: entry.hostPath,
      exportName: entry.exportName,
      args: [entry.guestPath, ...proc.args.slice(1)],
      env,
      preopens: preopensFor(proc.user && proc.user.uid !== 0 ? await this.userVisibleRoot() : this.rootfs),
      stdout: stdio.stdout,
      stderr: stdio.stderr,
      ...(stdin ? { stdin } : {}),
      ...(proc.user && (proc.user.uid !== 0 || proc.user.gid !== 0 || proc.user.additionalGids?.length)
        ? { user: proc.user }
        : {}),
      ...(trace ? { trace } : {}),
    };
    const cgroup = this.cgroup;
    const place =
      cgroup &&
      (async (pid: number) => {
        try {
          await cgroup.addProcess(pid);
        } catch (err) {
          throw failedPrecondition(
            `container ${this.id}: cannot move the Wasm child into cgroup ${cgroup.path} (is the memory limit below what it already uses?): ${(err as Error).message}`,
            { cause: err },
          );
        }
      });
    try {
      const instance = await this.engine.prepare(spec, place ? { place } : {});
      return new Process(this.id, execId, stdio, instance, (p, exit) => {
        release();
        stdin?.destroy(); // left paused once the child's end of the pipe closed
        this.onExit(this, p, exit);
      });
    } catch (err) {
      release();
      stdin?.destroy();
      throw err;
    }
  }
}

/**
 * Only `/` is preopened: with this wasi-libc a "." preopen would capture
 * absolute paths too. The spec's cwd travels as PWD instead (see withPwd).
 */
function preopensFor(rootfs: string): Record<string, string> {
  return { '/': rootfs };
}

/**
 * wasi-libc starts every module at "/" whatever the host does, so the spec's
 * cwd reaches the module as PWD (as a shell would set it), unless the spec
 * sets PWD itself. Runtimes that emulate a cwd (Go's wasip1) start there.
 */
function withPwd(env: string[], cwd: string): string[] {
  return env.some((e) => e.startsWith('PWD=')) ? env : [...env, `PWD=${cwd}`];
}

const round = (ms: number) => Math.round(ms * 10) / 10;

function safeKill(p: Process): void {
  try {
    p.kill(SIGKILL);
  } catch {
    // already finished
  }
}
