// The long-lived shim daemon (`serve`): serves the Task service on the socket
// `start` bound and passed as fd 3, logs to the bundle's log FIFO, publishes
// events, and exits once Shutdown finds no container left.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { setPriority } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Task } from '../gen/containerd/task/v2/shim_pb.js';
import { TtrpcServer } from '../ttrpc/server.js';
import { NodeEngine } from '../wasm/node-engine.js';
import { EventPublisher } from './events.js';
import type { ShimFlags } from './flags.js';
import { createLogger, openLogFifo } from './log.js';
import { TaskService } from './task-service.js';
import { TaskTracer } from './tracing.js';
import { startTelemetry } from '../telemetry/index.js';
import { VERSION } from '../version.js';
import { bindShimSocket, canConnect } from './address.js';
import { launchSpare, spareSocketPath, type Handoff, type HandoffReply } from './spare.js';

const LISTEN_FD = 3;
/** The exporter loads in a worker thread, started this long after the daemon serves (or at exit), never on an RPC. */
const TELEMETRY_WARMUP_DELAY_MS = 250;
/** At exit, spans get this long to reach the collector. */
const TELEMETRY_FLUSH_MS = 2_000;
const here = typeof __dirname === 'string' ? __dirname : path.dirname(new URL(import.meta.url).pathname);

export interface DaemonOptions {
  /** Listening socket: an inherited fd (from `start`), a bound server (spare), or a path (tests). */
  listen?: { fd: number } | { path: string } | { server: net.Server };
  childEntry?: string;
  /** An engine already warmed (spare daemons boot it before they have a container). */
  engine?: NodeEngine;
}

/** Set to 0 in containerd's environment to run without spare daemons. */
const SPARE_ENV = 'WASMTS_SPARE';
/** The next spare boots once this daemon's first container is under way (or as it exits). */
const SPARE_LAUNCH_DELAY_MS = 1_000;
/** An unused spare exits after this long. */
const SPARE_IDLE_MS = 10 * 60_000;
const SPARE_WATCH_MS = 5_000;

/** This bundle: spares are keyed by it, so a new build never hands containers to old code. */
const DAEMON_CODE = path.join(here, 'daemon.cjs');
const sparesEnabled = () => process.env[SPARE_ENV] !== '0';
const newEngine = (childEntry?: string) => new NodeEngine({ childEntry: childEntry ?? path.join(here, 'wasm-child.cjs') });

export async function runDaemon(flags: ShimFlags, options: DaemonOptions = {}): Promise<void> {
  const bundle = flags.bundle || process.cwd();
  const log = createLogger(openLogFifo(bundle), flags.debug, { namespace: flags.namespace });
  // containerd removes the bundle (our cwd) at teardown, while we may still be
  // flushing: a thread started then (the telemetry worker) would fail on uv_cwd.
  process.chdir('/');
  // A bug in one RPC must never take the daemon (and every exit status) down.
  process.on('uncaughtException', (err) => log.error('uncaught exception', { error: err.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: (err as Error)?.stack ?? String(err) }));

  const events = new EventPublisher({ address: process.env.TTRPC_ADDRESS ?? '', namespace: flags.namespace, log });
  const telemetry = startTelemetry({
    env: process.env,
    log: (level, msg) => log[level](msg),
    workerUrl: pathToFileURL(path.join(here, 'telemetry-worker.cjs')),
    autoStart: false,
    scopeVersion: VERSION,
  });
  // Always: the module gets the trace context even when spans are not exported.
  const tracer = new TaskTracer(telemetry, { env: process.env, namespace: () => flags.namespace, socketPath: () => flags.socket });
  const engine = options.engine ?? newEngine(options.childEntry);
  if (telemetry.enabled) engine.onChildSpans = (records) => telemetry.submit(records);
  const server = new TtrpcServer({
    onError: (err) => log.warn(`ttrpc: ${err.message}`, { kind: err.kind }),
  });

  let exiting = false;
  const exit = async (now: boolean) => {
    if (exiting) return;
    exiting = true;
    log.info('shutting down');
    // containerd waits for our connection to close: let it go before flushing
    // anything, so a slow collector never holds up the container's teardown.
    if (flags.socket) fs.rmSync(flags.socket, { force: true });
    void server.close().catch(() => undefined);
    // What is left (flushing spans and events, launching a spare) must not
    // compete with containerd's teardown, which runs `delete` right now.
    try {
      setPriority(19);
    } catch {
      // not permitted
    }
    tracer.endAll();
    await Promise.all([
      events.drain(now ? 0 : 2_000),
      telemetry.shutdown(now ? 0 : TELEMETRY_FLUSH_MS),
      sparesEnabled() && flags.address && !now ? ensureSpare(flags) : undefined,
    ]);
    events.close();
    process.exit(0);
  };
  const service = new TaskService({
    engine,
    events,
    log,
    shutdown: (now) => void exit(now),
    traceContextFor: (id: string, execId: string) => tracer.traceContextFor(id, execId),
  });
  const impl = tracer.wrap(Task, service);
  server.registerService(Task, impl);
  server.registerService(Task, impl, { name: 'containerd.task.v3.Task' });
  await server.listen(options.listen ?? { fd: LISTEN_FD });
  // Boot the first container's child while containerd is still sending Create.
  engine.warm();
  if (telemetry.enabled) setTimeout(() => telemetry.warmUp(), TELEMETRY_WARMUP_DELAY_MS).unref();
  if (sparesEnabled() && flags.address) setTimeout(() => void ensureSpare(flags), SPARE_LAUNCH_DELAY_MS).unref();
  log.info('serving', { id: flags.id, pid: process.pid, socket: flags.socket });
}

async function ensureSpare(flags: ShimFlags): Promise<void> {
  const controlPath = spareSocketPath(flags.address, process.env, DAEMON_CODE);
  // A burst of daemons must not launch a herd: one spare (booting or waiting) holds the lock.
  if (lockHolder(`${controlPath}.lock`) !== undefined) return;
  if (!(await canConnect(controlPath, 200))) launchSpare(path.join(here, 'shim.cjs'), flags);
}

/** The live pid in a spare's lock file, if any. */
function lockHolder(lockPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(lockPath, 'utf8'));
  } catch {
    return undefined;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z' ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** Takes the spare lock (O_EXCL), replacing one whose holder is gone. */
function takeLock(lockPath: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      if (lockHolder(lockPath) !== undefined) return false;
      fs.rmSync(lockPath, { force: true }); // its spare died without cleaning up
    }
  }
  return false;
}

/**
 * `spare`: boot, warm a Wasm child, and wait on the control socket for a
 * container; then become its daemon. Exits when unused for SPARE_IDLE_MS or
 * when containerd's socket disappears.
 */
export async function runSpare(flags: ShimFlags): Promise<void> {
  const controlPath = spareSocketPath(flags.address, process.env, DAEMON_CODE);
  const lockPath = `${controlPath}.lock`;
  if (!takeLock(lockPath)) return process.exit(0); // another spare got there first
  fs.rmSync(controlPath, { force: true }); // we hold the lock: any file here is a dead spare's
  const engine = newEngine();
  engine.warm();
  const control = net.createServer({ allowHalfOpen: false });
  const leave = () => {
    control.close(); // unlinks controlPath
    fs.rmSync(lockPath, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', leave);
  process.on('SIGINT', leave);
  const idle = setTimeout(leave, SPARE_IDLE_MS);
  const watch = setInterval(() => {
    if (!fs.existsSync(flags.address)) leave();
  }, SPARE_WATCH_MS);
  let adopted = false;
  control.on('connection', (socket) => {
    let buffer = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (!buffer.includes('\n')) return;
      const reply = (r: HandoffReply) => socket.end(`${JSON.stringify(r)}\n`);
      if (adopted) return reply({ ok: false, error: 'already adopted' });
      adopted = true;
      clearTimeout(idle);
      clearInterval(watch);
      process.removeListener('SIGTERM', leave);
      process.removeListener('SIGINT', leave);
      control.close(); // the next start must not find this spare any more
      fs.rmSync(lockPath, { force: true });
      adopt(JSON.parse(buffer) as Handoff, flags, engine).then(
        () => reply({ ok: true, pid: process.pid }),
        (err: unknown) => {
          reply({ ok: false, error: (err as Error)?.message ?? String(err) });
          process.exit(1);
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(controlPath, () => resolve());
  });
  fs.chmodSync(controlPath, 0o600);
}

/** Back to normal priority: a spare boots niced, a container's daemon must not stay so. */
function unnice(): void {
  try {
    setPriority(0);
  } catch {
    // not root: stays as it is
  }
}

async function adopt(handoff: Handoff, flags: ShimFlags, engine: NodeEngine): Promise<void> {
  unnice();
  engine.unniceSpare();
  const server = await bindShimSocket(handoff.socketPath);
  if (!server) throw new Error(`a live daemon already serves ${handoff.socketPath}`);
  // Serving (handlers attached) before start prints the address: containerd dials at once.
  await runDaemon(
    { ...flags, namespace: handoff.namespace, id: handoff.id, address: handoff.address, publishBinary: handoff.publishBinary, debug: handoff.debug, socket: handoff.socketPath, bundle: handoff.bundle, action: 'serve' },
    { listen: { server }, engine },
  );
}
