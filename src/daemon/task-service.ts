// The containerd.task.v2.Task service: a thin layer that maps each RPC onto a
// container or process and publishes the events containerd expects.
/* eslint-disable @typescript-eslint/require-await -- every RPC is async, so a refusal is always a rejected call, never a synchronous throw */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { anyPack, EmptySchema, timestampFromDate, type Empty } from '@bufbuild/protobuf/wkt';
import * as pb from '../gen/containerd/task/v2/shim_pb.js';
import * as ev from '../gen/containerd/events/task_pb.js';
import { MetricsSchema } from '../gen/cgroups/v1/metrics_pb.js';
import type { Engine, ExitInfo } from './engine/engine.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, notImplemented } from './errors.js';
import type { CallContext } from '../ttrpc/types.js';
import { VERSION } from '../version.js';
import { decodeLinuxResources, writeDeleteResponse, type LinuxResources } from '../bundle/index.js';
import { Container } from './container/container.js';
import type { EventSink } from './events.js';
import type { Logger } from './log.js';
import type { Process } from './container/process.js';
import { CHILD_TRACE } from './call-values.js';
import type { CgroupStats } from '../host/index.js';

export interface TaskServiceDeps {
  engine: Engine;
  events: EventSink;
  log: Logger;
  /** Called after a Shutdown that found no container left. */
  shutdown(now: boolean): void;
  /** Called as a Create begins, before anything is read from the bundle. */
  beforeCreate?(id: string, bundle: string): void;
}

/** The service name containerd speaks when a Shutdown follows each Delete (see delete). */
const V2_SERVICE = 'containerd.task.v2.Task';

const PROCESS_SPEC_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';

/** containerd's identifier rule: ids become file names (pid files, cgroups), so nothing else gets through. */
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_IDENTIFIER = 76;

function checkIdentifier(kind: string, id: string): void {
  if (!IDENTIFIER.test(id) || id.length > MAX_IDENTIFIER) {
    throw invalidArgument(
      `invalid ${kind} "${id}": must match ${IDENTIFIER.source} and be at most ${MAX_IDENTIFIER} characters`,
    );
  }
}

type Reply<T extends import('@bufbuild/protobuf').DescMessage> = MessageInitShape<T>;

export class TaskService {
  readonly containers = new Map<string, Container>();
  private readonly creating = new Set<string>();
  /** Deleted containers whose mounts and cgroup are still being removed. */
  private readonly cleaning = new Set<Promise<void>>();

  constructor(private readonly deps: TaskServiceDeps) {}

  /** True while a Create, or a deleted container's cleanup, is under way. */
  get busy(): boolean {
    return this.creating.size > 0 || this.cleaning.size > 0;
  }

  private container(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw notFound(`container ${id} not found`);
    return c;
  }

  async create(req: pb.CreateTaskRequest, ctx?: CallContext): Promise<Reply<typeof pb.CreateTaskResponseSchema>> {
    checkIdentifier('container id', req.id);
    if (!req.bundle) throw invalidArgument(`container ${req.id}: bundle path is required`);
    if (req.checkpoint)
      throw notImplemented(`container ${req.id}: restoring a checkpoint is not supported for Wasm instances`);
    if (this.containers.has(req.id) || this.creating.has(req.id)) {
      throw alreadyExists(`container ${req.id} already exists`);
    }
    this.creating.add(req.id);
    try {
      this.deps.beforeCreate?.(req.id, req.bundle);
      this.deps.log.debug('create', { id: req.id });
      const stdio = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal };
      const trace = ctx?.values.get(CHILD_TRACE);
      const container = await Container.create(
        { id: req.id, bundle: req.bundle, rootfs: req.rootfs, stdio, ...(trace ? { trace } : {}) },
        this.deps.engine,
        (c, p, exit) => this.exited(c, p, exit),
      );
      this.containers.set(req.id, container);
      this.deps.log.info('container created', {
        id: req.id,
        pid: container.init.pid,
        mount_ms: container.createTimings.mountMs,
        prepare_ms: container.createTimings.prepareMs,
      });
      this.deps.events.publish(
        '/tasks/create',
        ev.TaskCreateSchema,
        create(ev.TaskCreateSchema, {
          containerId: req.id,
          bundle: req.bundle,
          rootfs: req.rootfs,
          io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
          checkpoint: req.checkpoint,
          pid: container.init.pid,
        }),
      );
      return { pid: container.init.pid };
    } catch (err) {
      this.deps.log.error('create failed', { id: req.id, error: (err as Error).message });
      throw err;
    } finally {
      this.creating.delete(req.id);
    }
  }

  async start(req: pb.StartRequest): Promise<Reply<typeof pb.StartResponseSchema>> {
    const c = this.container(req.id);
    const p = c.process(req.execId);
    p.start();
    if (req.execId) {
      this.deps.events.publish(
        '/tasks/exec-started',
        ev.TaskExecStartedSchema,
        create(ev.TaskExecStartedSchema, { containerId: c.id, execId: req.execId, pid: p.pid }),
      );
    } else {
      this.deps.events.publish(
        '/tasks/start',
        ev.TaskStartSchema,
        create(ev.TaskStartSchema, { containerId: c.id, pid: p.pid }),
      );
    }
    return { pid: p.pid };
  }

  async delete(req: pb.DeleteRequest, ctx?: CallContext): Promise<Reply<typeof pb.DeleteResponseSchema>> {
    const c = this.container(req.id);
    const p = c.process(req.execId);
    const exit = await p.delete();
    if (req.execId) {
      c.removeExec(req.execId);
    } else {
      // Unmounting takes an exec or two. Over v2, containerd's Shutdown follows (it waits for the
      // cleanup) before the bundle goes, so it overlaps containerd's next steps; over v3 a pod's
      // container gets no Shutdown and its bundle goes right after Delete, so Delete waits.
      const cleanup = c.destroy().then(
        () => leaveDeleteResponse(c.bundle, p.pid, exit),
        (err: unknown) =>
          this.deps.log.error('cleanup failed', { id: c.id, error: (err as Error)?.message ?? String(err) }),
      );
      this.cleaning.add(cleanup);
      void cleanup.finally(() => this.cleaning.delete(cleanup));
      if (ctx?.service !== V2_SERVICE) await cleanup;
      this.containers.delete(c.id);
      this.deps.events.publish(
        '/tasks/delete',
        ev.TaskDeleteSchema,
        create(ev.TaskDeleteSchema, {
          containerId: c.id,
          pid: p.pid,
          exitStatus: exit.status,
          exitedAt: timestampFromDate(exit.exitedAt),
        }),
      );
      this.deps.log.info('container deleted', { id: c.id, exit_status: exit.status });
    }
    return { pid: p.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.exitedAt) };
  }

  async pids(req: pb.PidsRequest): Promise<Reply<typeof pb.PidsResponseSchema>> {
    const c = this.container(req.id);
    return {
      processes: c
        .processes()
        .filter((p) => p.alive)
        .map((p) => ({ pid: p.pid })),
    };
  }

  async pause(req: pb.PauseRequest): Promise<Empty> {
    const c = this.container(req.id);
    c.init.pause();
    for (const p of c.execs.values()) if (p.alive) tryTo(() => p.pause());
    this.deps.events.publish('/tasks/paused', ev.TaskPausedSchema, create(ev.TaskPausedSchema, { containerId: c.id }));
    return create(EmptySchema);
  }

  async resume(req: pb.ResumeRequest): Promise<Empty> {
    const c = this.container(req.id);
    c.init.resume();
    for (const p of c.execs.values()) if (p.alive) tryTo(() => p.resume());
    this.deps.events.publish(
      '/tasks/resumed',
      ev.TaskResumedSchema,
      create(ev.TaskResumedSchema, { containerId: c.id }),
    );
    return create(EmptySchema);
  }

  async checkpoint(req: pb.CheckpointTaskRequest): Promise<Empty> {
    this.container(req.id);
    throw notImplemented(
      `container ${req.id}: checkpoint is not supported: a running Wasm instance's memory and host state cannot be captured by this shim`,
    );
  }

  async kill(req: pb.KillRequest): Promise<Empty> {
    const c = this.container(req.id);
    if (req.all && !req.execId) {
      const alive = c.processes().filter((p) => p.alive);
      if (alive.length === 0) throw notFound('process already finished');
      for (const p of alive) tryTo(() => p.kill(req.signal));
    } else {
      c.process(req.execId).kill(req.signal);
    }
    return create(EmptySchema);
  }

  async exec(req: pb.ExecProcessRequest, ctx?: CallContext): Promise<Empty> {
    const c = this.container(req.id);
    checkIdentifier('exec id', req.execId);
    const spec = parseProcessSpec(req.spec, `exec ${req.execId} in container ${req.id}`);
    const trace = ctx?.values.get(CHILD_TRACE);
    await c.exec({
      execId: req.execId,
      stdio: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
      process: spec,
      ...(trace ? { trace } : {}),
    });
    this.deps.events.publish(
      '/tasks/exec-added',
      ev.TaskExecAddedSchema,
      create(ev.TaskExecAddedSchema, { containerId: c.id, execId: req.execId }),
    );
    return create(EmptySchema);
  }

  async resizePty(req: pb.ResizePtyRequest): Promise<Empty> {
    this.container(req.id).process(req.execId);
    throw failedPrecondition(
      `container ${req.id}: the process has no terminal to resize (terminals are not supported)`,
    );
  }

  async closeIO(req: pb.CloseIORequest): Promise<Empty> {
    const p = this.container(req.id).process(req.execId);
    if (req.stdin) p.closeStdin();
    return create(EmptySchema);
  }

  async update(req: pb.UpdateTaskRequest): Promise<Empty> {
    const c = this.container(req.id);
    if (req.resources && req.resources.value.length > 0) {
      let resources: LinuxResources;
      try {
        resources = decodeLinuxResources(req.resources.typeUrl, req.resources.value);
      } catch (err) {
        this.deps.log.warn('update refused', { id: c.id, error: (err as Error).message });
        throw invalidArgument(`container ${c.id}: ${(err as Error).message}`);
      }
      if (!c.cgroup) this.deps.log.warn('no cgroup for this container: resource limits are not applied', { id: c.id });
      c.applyResources(resources);
    }
    Object.assign(c.annotations, req.annotations);
    return create(EmptySchema);
  }

  async wait(req: pb.WaitRequest): Promise<Reply<typeof pb.WaitResponseSchema>> {
    const p = this.container(req.id).process(req.execId);
    const exit = await p.wait();
    return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.exitedAt) };
  }

  async state(req: pb.StateRequest): Promise<Reply<typeof pb.StateResponseSchema>> {
    const c = this.container(req.id);
    const p = c.process(req.execId);
    const exit = p.exit;
    return {
      id: req.execId || c.id,
      bundle: c.bundle,
      pid: p.pid,
      status: p.state.status,
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.stdio.terminal,
      exitStatus: exit?.status ?? 0,
      ...(exit ? { exitedAt: timestampFromDate(exit.exitedAt) } : {}),
      execId: req.execId,
    };
  }

  async stats(req: pb.StatsRequest): Promise<Reply<typeof pb.StatsResponseSchema>> {
    const c = this.container(req.id);
    const cgroup = c.cgroup?.stats();
    const metrics = cgroup ? cgroupMetrics(cgroup, processUsage(c)) : processMetrics(c);
    const stats = anyPack(MetricsSchema, metrics);
    stats.typeUrl = MetricsSchema.typeName; // containerd 1.6 resolves the bare name
    return { stats };
  }

  async connect(req: pb.ConnectRequest): Promise<Reply<typeof pb.ConnectResponseSchema>> {
    const c = this.containers.get(req.id);
    return { shimPid: process.pid, taskPid: c?.init.pid ?? 0, version: VERSION };
  }

  async shutdown(req: pb.ShutdownRequest): Promise<Empty> {
    if (this.containers.size > 0 || this.creating.size > 0) return create(EmptySchema);
    // containerd's `delete` runs once this connection closes: what Delete left must be done by then.
    await Promise.all(this.cleaning);
    if (this.containers.size > 0 || this.creating.size > 0) return create(EmptySchema);
    setImmediate(() => this.deps.shutdown(req.now));
    return create(EmptySchema);
  }

  private exited(c: Container, p: Process, exit: ExitInfo): void {
    this.deps.log.info('process exited', { id: c.id, exec_id: p.execId, pid: p.pid, exit_status: exit.status });
    if (c.takeOomKill()) {
      this.deps.log.warn('out of memory: the kernel killed a process of the container', {
        id: c.id,
        exec_id: p.execId,
      });
      this.deps.events.publish('/tasks/oom', ev.TaskOOMSchema, create(ev.TaskOOMSchema, { containerId: c.id }));
    }
    this.deps.events.publish(
      '/tasks/exit',
      ev.TaskExitSchema,
      create(ev.TaskExitSchema, {
        containerId: c.id,
        id: p.execId || c.id,
        pid: p.pid,
        exitStatus: exit.status,
        exitedAt: timestampFromDate(exit.exitedAt),
      }),
    );
    // When init goes, its execs go with it, as they would with their PID namespace under runc.
    if (!p.execId) for (const e of c.execs.values()) if (e.alive) tryTo(() => e.kill(9));
  }
}

const big = (n: number) => BigInt(Math.max(0, Math.round(n)));

/**
 * Metrics from the container's cgroup, as runc's shim reports them. A child
 * booted ahead of the container keeps its earlier pages charged where it was
 * booted (kernels since 6.x no longer move charges), so memory use is at
 * least the processes' own RSS.
 */
function cgroupMetrics(s: CgroupStats, own: Usage) {
  const usage = Math.max(s.memoryUsage, own.rss);
  const rss = Math.max(s.rss, own.rss);
  return create(MetricsSchema, {
    pids: { current: big(s.pids) },
    cpu: { usage: { total: big(s.cpuTotalNanos), user: big(s.cpuUserNanos), kernel: big(s.cpuKernelNanos) } },
    memory: {
      rss: big(rss),
      totalRss: big(rss),
      cache: big(s.cache),
      totalCache: big(s.cache),
      usage: {
        usage: big(usage),
        max: big(Math.max(s.memoryMaxUsage, usage)),
        limit: big(s.memoryLimit),
        failcnt: big(s.memoryFailcnt),
      },
    },
  });
}

interface Usage {
  rss: number;
  user: number;
  kernel: number;
  count: number;
}

function processUsage(c: Container): Usage {
  const total: Usage = { rss: 0, user: 0, kernel: 0, count: 0 };
  for (const p of c.processes()) {
    const u = p.alive ? p.instance.usage() : undefined;
    if (!u) continue;
    total.rss += u.rssBytes;
    total.user += u.userNanos;
    total.kernel += u.kernelNanos;
    total.count++;
  }
  return total;
}

/** Without a cgroup: the processes' own /proc accounting. */
function processMetrics(c: Container) {
  const { rss, user, kernel, count } = processUsage(c);
  return create(MetricsSchema, {
    pids: { current: big(count) },
    cpu: { usage: { total: big(user + kernel), user: big(user), kernel: big(kernel) } },
    memory: { rss: big(rss), totalRss: big(rss), usage: { usage: big(rss) } },
  });
}

/** The Exec's process as JSON; its fields are checked where it is used (Container.exec). */
function parseProcessSpec(spec: pb.ExecProcessRequest['spec'], who: string): unknown {
  if (!spec || spec.value.length === 0) throw invalidArgument(`${who}: process spec is required`);
  if (spec.typeUrl && !spec.typeUrl.endsWith(PROCESS_SPEC_URL)) {
    throw invalidArgument(`${who}: process spec has type ${spec.typeUrl}, expected ${PROCESS_SPEC_URL}`);
  }
  try {
    return JSON.parse(Buffer.from(spec.value).toString('utf8')) as unknown;
  } catch (err) {
    throw invalidArgument(`${who}: process spec is not valid JSON: ${(err as Error).message}`);
  }
}

/** What containerd's `delete` exec will print: the front end finds it and need not start Node. */
function leaveDeleteResponse(bundle: string, pid: number, exit: ExitInfo): void {
  try {
    writeDeleteResponse(bundle, pid, exit.status, exit.exitedAt.getTime());
  } catch {
    // the bundle is gone: `delete` then does its own cleanup, which finds nothing left
  }
}

function tryTo(fn: () => void): void {
  try {
    fn();
  } catch {
    // one process in a group refusing must not stop the others
  }
}
