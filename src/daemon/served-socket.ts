// One container socket of the shared daemon: its own ttrpc server,
// connections, Task service, trace roots and log FIFO. Containers of one pod
// share a socket; everything else gets its own. Shutdown (or containerd
// leaving a socket with nothing on it) closes the socket and forgets it,
// without touching the daemon's other sockets.
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { namespaceOfBundle } from '../bundle/index.js';
import { Task } from '../gen/containerd/task/v2/shim_pb.js';
import { TtrpcServer } from '../ttrpc/server.js';
import type { Telemetry } from '../telemetry/index.js';
import type { Engine } from './engine/engine.js';
import { socketPathFor } from '../handoff/index.js';
import { inNamespace, type EventSink } from './events.js';
import { createLogger, openLogFifo, type Logger } from './log.js';
import { TaskService } from './task-service.js';
import { TaskTracer } from './task-tracing.js';
import { errorsToStatus } from './errors.js';

const NAMESPACE_METADATA = 'containerd-namespace-ttrpc';
/** A socket containerd left with no container and no connection is closed after this long. */
const ABANDONED_MS = 10_000;
/** A socket claimed by `start` that never gets a container (start killed midway) is closed after this long. */
const UNUSED_MS = 60_000;

/** What every socket of a daemon shares. */
export interface DaemonParts {
  engine: Engine;
  events: EventSink;
  telemetry: Telemetry;
  /** Logs outside any container. */
  log: Logger;
  debug: boolean;
  containerdAddress: string;
  env: NodeJS.ProcessEnv;
  /** Warnings about the daemon's configuration (an invalid OTLP endpoint…), repeated in each container's log. */
  standingWarnings: readonly string[];
}

/** What the daemon already knows of a socket's first container (Node's `start` handed it over). */
export interface KnownContainer {
  namespace: string;
  bundle: string;
  socketPath: string;
}

export class ServedSocket {
  private namespace = '';
  /** Where containerd dials this socket; for a claimed ready socket, known from the first Create. */
  private socketPath: string | undefined;
  private readonly service: TaskService;
  private readonly ttrpc: TtrpcServer;
  private readonly tracer: TaskTracer;
  private logFd: number | undefined;
  /** The log FIFO of the socket's first container, once Create named it. */
  containerLog: Logger | undefined;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly parts: DaemonParts,
    server: net.Server,
    private readonly onClosed: (socket: ServedSocket) => void,
    known?: KnownContainer,
    /** Of the socket file as bound (a rename keeps it). */
    private readonly inode?: number,
  ) {
    const log = this.logger();
    if (known) {
      this.namespace = known.namespace;
      this.socketPath = known.socketPath;
      this.openLog(known.bundle);
    }
    this.ttrpc = new TtrpcServer({ onError: (err) => log.warn(`ttrpc: ${err.message}`, { kind: err.kind }) });
    this.ttrpc.use((next) => (req) => {
      if (!this.namespace) this.namespace = req.ctx.metadata.get(NAMESPACE_METADATA)?.[0] ?? '';
      return next(req);
    });
    // Always: the module gets the trace context even when spans are not exported.
    const tracer = new TaskTracer(parts.telemetry, {
      env: parts.env,
      namespace: () => this.namespace,
      socketPath: () => this.socketPath ?? '',
    });
    this.tracer = tracer;
    this.service = new TaskService({
      engine: parts.engine,
      events: inNamespace(parts.events, () => this.namespace),
      log,
      shutdown: () => this.close(),
      beforeCreate: (id, bundle) => this.adopt(id, bundle),
    });
    // Innermost, the daemon's ShimErrors become ttrpc statuses, once: the tracer sees the status the client gets.
    this.ttrpc.use(tracer.interceptor).use(errorsToStatus);
    this.ttrpc.registerService(Task, this.service);
    this.ttrpc.registerService(Task, this.service, { name: 'containerd.task.v3.Task' });
    void this.ttrpc.listen({ server });
    server.on('connection', (conn) => {
      clearTimeout(this.idleTimer);
      conn.once('close', () => this.checkAbandoned());
    });
    this.idleTimer = setTimeout(() => this.closeIfEmpty(), UNUSED_MS).unref();
  }

  /** Serves a connection that arrived before this socket was set up (the one that claimed it). */
  serve(conn: net.Socket): void {
    clearTimeout(this.idleTimer);
    conn.once('close', () => this.checkAbandoned());
    this.ttrpc.serveSocket(conn);
  }

  /** Closes the socket, removes its file and forgets it; containers must be gone. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    // Before the connection goes: containerd's `delete` runs as soon as it does.
    if (this.socketPath && this.ownsFile(this.socketPath)) fs.rmSync(this.socketPath, { force: true });
    void this.ttrpc.close().catch(() => undefined);
    this.tracer.endAll();
    this.log().info('socket closed', { socket: this.socketPath });
    if (this.logFd !== undefined) fs.closeSync(this.logFd);
    this.logFd = undefined;
    this.onClosed(this);
  }

  /** The file at the path is still the one this socket was bound as (not another daemon's since). */
  private ownsFile(file: string): boolean {
    try {
      return this.inode === undefined || fs.statSync(file).ino === this.inode;
    } catch {
      return false;
    }
  }

  /** The first Create tells a claimed socket which container it serves, where it lives and where to log. */
  private adopt(id: string, bundle: string): void {
    if (!this.namespace) this.namespace = namespaceOfBundle(bundle);
    if (!this.socketPath && this.namespace)
      this.socketPath = socketPathFor(this.parts.containerdAddress, this.namespace, id);
    this.openLog(bundle);
  }

  private openLog(bundle: string): void {
    if (this.logFd !== undefined) return;
    this.logFd = openLogFifo(bundle);
    if (this.logFd === undefined) return;
    this.containerLog = createLogger(this.logFd, this.parts.debug, { namespace: this.namespace || undefined });
    for (const warning of this.parts.standingWarnings) this.containerLog.warn(warning);
  }

  private log(): Logger {
    return this.containerLog ?? this.parts.log;
  }

  /** Lines go to the container's log FIFO once it is known, to the daemon's log before. */
  private logger(): Logger {
    return {
      debug: (m, f) => this.log().debug(m, f),
      info: (m, f) => this.log().info(m, f),
      warn: (m, f) => this.log().warn(m, f),
      error: (m, f) => this.log().error(m, f),
    };
  }

  private checkAbandoned(): void {
    if (this.closed || this.ttrpc.connections > 0 || !this.isEmpty()) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.closeIfEmpty(), ABANDONED_MS).unref();
  }

  private closeIfEmpty(): void {
    if (!this.closed && this.ttrpc.connections === 0 && this.isEmpty()) this.close();
  }

  private isEmpty(): boolean {
    return this.service.containers.size === 0 && !this.service.busy;
  }
}
