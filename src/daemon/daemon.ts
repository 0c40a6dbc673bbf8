// The long-lived shim daemon (`serve`): one per key (see handoff.ts). It
// serves every container socket it is given, each a ServedSocket, and shares
// among them one Wasm engine with a warm child, one event publisher and one
// telemetry pipeline (the OpenTelemetry SDK loads once per daemon). The
// daemon holding the key's lock keeps ready sockets for the front end to
// claim and a control socket for Node's `start`; it leaves after an idle
// period with no container, or when its containerd goes away.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NodeEngine } from './engine/node-engine.js';
import { componentCacheConfig } from '../child/cache-config.js';
import { startTelemetry, type SpanRecord } from '../telemetry/index.js';
import { VERSION } from '../version.js';
import {
  bindShimSocket,
  daemonPaths,
  isDaemonDirName,
  isReadySocketName,
  keyFrom,
  lockHolder,
  readySocketPath,
  serveHandoffs,
  takeLock,
  type DaemonPaths,
  type Handoff,
} from '../handoff/index.js';
import { EventPublisher } from './events.js';
import { createLogger, openLogFifo, type Logger } from './log.js';
import { ServedSocket, type DaemonParts, type KnownContainer } from './served-socket.js';

const LISTEN_FD = 3;
/** The exporter loads in a worker thread this long after the daemon serves, never on an RPC. */
const TELEMETRY_WARMUP_DELAY_MS = 250;
/** After a container's trace ends, its spans leave this soon (batched with others ending meanwhile). */
const TELEMETRY_FLUSH_DELAY_MS = 200;
/** At exit, spans get this long to reach the collector. */
const TELEMETRY_FLUSH_MS = 2_000;
/** Ready sockets kept for the front end: a burst of starts each claims one without falling back to Node. */
const READY_SOCKETS = 4;
/** With no container, the daemon leaves after this long (WASMTS_IDLE_SECONDS overrides). */
const DEFAULT_IDLE_MS = 10 * 60_000;
const WATCH_MS = 2_000;
const here = typeof __dirname === 'string' ? __dirname : path.dirname(new URL(import.meta.url).pathname);

function idleMs(env: NodeJS.ProcessEnv): number {
  const seconds = Number(env.WASMTS_IDLE_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_IDLE_MS;
}

function openDaemonLog(paths: DaemonPaths | undefined, bundle: string): number | undefined {
  if (!paths) return openLogFifo(bundle);
  try {
    return fs.openSync(paths.log, 'a', 0o600);
  } catch {
    return undefined;
  }
}

/** A listening socket: the first container's, inherited from the `start` that spawned this daemon, or the control socket. */
function listenOn(target: { fd: number } | { path: string }): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(target, () => resolve(server));
  });
}

/** The flags containerd gave the `start` that spawned this daemon (its first container's, when it has one). */
export interface DaemonFlags {
  namespace: string;
  address: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
}

export async function runDaemon(flags: DaemonFlags): Promise<void> {
  const key = keyFrom(process.env);
  const paths = key ? daemonPaths(key) : undefined;
  // STATE_ROOT's own mode is the container's business (its non-root rootfs views live below it).
  if (paths) fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  // containerd 1.6 passes no -bundle: `start` runs in the bundle, and so does the daemon it spawns.
  const bundle = flags.bundle || process.cwd();
  const log = createLogger(openDaemonLog(paths, bundle), flags.debug, { pid: process.pid });
  // containerd removes bundles while we run; a thread started later (the telemetry worker) would fail on uv_cwd.
  process.chdir('/');
  // A bug in one RPC must never take the daemon (and every exit status) down.
  process.on('uncaughtException', (err) => log.error('uncaught exception', { error: err.stack ?? String(err) }));
  process.on('unhandledRejection', (err) =>
    log.error('unhandled rejection', { error: (err as Error)?.stack ?? String(err) }),
  );

  let daemon: Daemon | undefined = undefined;
  const standingWarnings: string[] = [];
  const telemetry = startTelemetry({
    env: process.env,
    // Exporter trouble (dropped spans) concerns every container: it reaches their logs too.
    log: (level, msg) => {
      log[level](msg);
      if (level !== 'warn' && level !== 'error') return;
      if (daemon) daemon.toContainerLogs(level, msg);
      else standingWarnings.push(msg); // the configuration's: every container's log repeats them
    },
    workerUrl: pathToFileURL(path.join(here, 'telemetry-worker.cjs')),
    autoStart: false,
    scopeVersion: VERSION,
  });
  const engine = new NodeEngine({
    childEntry: path.join(here, 'wasm-child.cjs'),
    componentCache: componentCacheConfig(process.env),
    ...(telemetry.enabled ? { submitSpans: (records: SpanRecord[]) => telemetry.submit(records) } : {}),
  });
  const events = new EventPublisher({ address: process.env.TTRPC_ADDRESS ?? '', namespace: flags.namespace, log });
  const parts: DaemonParts = {
    engine,
    events,
    telemetry,
    log,
    debug: flags.debug,
    containerdAddress: flags.address,
    env: process.env,
    standingWarnings,
  };
  daemon = new Daemon(parts, engine, log, paths, idleMs(process.env));

  const first = await listenOn({ fd: LISTEN_FD });
  daemon.add(
    first,
    flags.id ? { namespace: flags.namespace, bundle, socketPath: flags.socket } : undefined,
    inodeOf(flags.socket),
  );
  engine.keepWarm();
  if (paths && takeLock(paths.lock)) await daemon.prepare(paths);
  daemon.watch(flags.address);
  process.on('SIGTERM', () => daemon.terminate());
  if (telemetry.enabled) setTimeout(() => telemetry.warmUp(), TELEMETRY_WARMUP_DELAY_MS).unref();
  log.info('serving', { key: key?.slice(0, 12), primary: daemon.primary, socket: flags.socket });
}

class Daemon {
  primary = false;
  private readonly served = new Set<ServedSocket>();
  /** Ready sockets by path, bound ahead for the front end to claim (`bound` once the file exists). */
  private readonly ready = new Map<string, { server: net.Server; bound: boolean; inode?: number }>();
  private control: net.Server | undefined;
  private serial = 0;
  private idleSince = Date.now();
  private exiting = false;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly parts: DaemonParts,
    private readonly engine: NodeEngine,
    private readonly log: Logger,
    private readonly paths: DaemonPaths | undefined,
    private readonly idleMs: number,
  ) {}

  /** `inode`: of the socket file as bound, so that closing it never removes another daemon's file at that path. */
  add(server: net.Server, known?: KnownContainer, inode?: number): ServedSocket {
    const socket = new ServedSocket(this.parts, server, (s) => this.forget(s), known, inode);
    this.served.add(socket);
    return socket;
  }

  /** Holds the key's lock: clears what dead daemons left, then serves handoffs and keeps ready sockets. */
  async prepare(paths: DaemonPaths): Promise<void> {
    this.primary = true;
    removeDeadDaemonDirs(paths.dir);
    for (const name of fs.readdirSync(paths.dir)) {
      if (isReadySocketName(name) || name === path.basename(paths.control))
        fs.rmSync(path.join(paths.dir, name), { force: true });
    }
    this.control = await listenOn({ path: paths.control });
    fs.chmodSync(paths.control, 0o600);
    serveHandoffs(this.control, (h) => this.accept(h));
    fs.watch(paths.dir, () => this.refill())
      .on('error', () => undefined)
      .unref();
    this.refill();
  }

  /** Leaves when idle, or when containerd is gone and nothing runs here any more. */
  watch(containerdAddress: string): void {
    setInterval(() => {
      this.refill();
      if (this.served.size > 0) return;
      const containerdGone = !!containerdAddress && !fs.existsSync(containerdAddress);
      if (!this.primary || containerdGone || Date.now() - this.idleSince >= this.idleMs) void this.exit();
    }, WATCH_MS).unref();
  }

  /** A daemon-wide warning, also written to the log of every container served now. */
  toContainerLogs(level: 'warn' | 'error', msg: string): void {
    for (const socket of this.served) socket.containerLog?.[level](msg);
  }

  /** SIGTERM (an operator, a harness): leave if nothing runs here; containers are never dropped. */
  terminate(): void {
    if (this.served.size === 0) void this.exit();
    else this.log.warn(`SIGTERM ignored: ${this.served.size} container sockets are still served`);
  }

  /** Notices claimed ready sockets (renamed away by a front end) and binds new ones. */
  private refill(): void {
    if (!this.paths || !this.primary || this.exiting) return;
    this.collectClaimed();
    while (this.ready.size < READY_SOCKETS) {
      const readyPath = readySocketPath(this.paths, this.serial++);
      const entry: { server: net.Server; bound: boolean; inode?: number } = {
        server: net.createServer(),
        bound: false,
      };
      entry.server.on('error', (err) => this.log.warn(`ready socket ${readyPath}: ${err.message}`));
      entry.server.once('connection', (conn) => {
        if (!this.ready.delete(readyPath)) return;
        this.claimed(entry.server, entry.inode).serve(conn);
        this.refill();
      });
      entry.server.listen({ path: readyPath, backlog: 128 }, () => {
        try {
          fs.chmodSync(readyPath, 0o600);
        } catch {
          // claimed already
        }
        entry.inode = inodeOf(readyPath);
        entry.bound = true;
      });
      this.ready.set(readyPath, entry);
    }
  }

  /** Ready sockets renamed away since the last look; true if any. */
  private collectClaimed(): boolean {
    let any = false;
    for (const [readyPath, entry] of this.ready) {
      if (!entry.bound || fs.existsSync(readyPath)) continue;
      this.ready.delete(readyPath);
      this.claimed(entry.server, entry.inode);
      any = true;
    }
    return any;
  }

  private claimed(server: net.Server, inode: number | undefined): ServedSocket {
    server.removeAllListeners('connection');
    this.idleSince = Date.now();
    return this.add(server, undefined, inode);
  }

  private async accept(handoff: Handoff): Promise<void> {
    if (this.exiting) throw new Error('the daemon is leaving');
    const server = await bindShimSocket(handoff.socketPath);
    if (!server) throw new Error(`a live daemon already serves ${handoff.socketPath}`);
    this.idleSince = Date.now();
    this.add(server, handoff, inodeOf(handoff.socketPath));
  }

  private forget(socket: ServedSocket): void {
    this.served.delete(socket);
    this.idleSince = Date.now();
    // A finished container's spans leave now rather than with the next batch.
    if (this.parts.telemetry.enabled && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        void this.parts.telemetry.flush();
      }, TELEMETRY_FLUSH_DELAY_MS);
      this.flushTimer.unref();
    }
    if (!this.primary && this.served.size === 0) void this.exit();
  }

  private async exit(): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    if (this.primary && this.paths) {
      // Without the lock no front end claims a ready socket; one claimed just before must still be served.
      fs.rmSync(this.paths.lock, { force: true });
      await new Promise((r) => setTimeout(r, 100));
      if (this.collectClaimed()) {
        this.exiting = false;
        this.primary = takeLock(this.paths.lock);
        return;
      }
    }
    this.log.info('leaving', { primary: this.primary });
    this.control?.close(); // unlinks the control socket
    for (const { server } of this.ready.values()) server.close(); // unlinks each ready socket
    this.engine.close();
    await Promise.all([this.parts.events.drain(2_000), this.parts.telemetry.shutdown(TELEMETRY_FLUSH_MS)]);
    if (this.primary && this.paths) fs.rmSync(this.paths.dir, { recursive: true, force: true });
    process.exit(0);
  }
}

/** A daemon's state dir is left behind when it was killed; keys change with every build and environment. */
const DEAD_DIR_AGE_MS = 60_000;

function removeDeadDaemonDirs(ownDir: string): void {
  const root = path.dirname(ownDir);
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    if (dir === ownDir || !isDaemonDirName(name)) continue; // e.g. rootfs/, where user views are mounted
    try {
      if (Date.now() - fs.statSync(dir).mtimeMs < DEAD_DIR_AGE_MS) continue;
      if (lockHolder(path.join(dir, 'lock')) === undefined) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // raced with its own daemon's cleanup
    }
  }
}

function inodeOf(file: string | undefined): number | undefined {
  if (!file) return undefined;
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}
