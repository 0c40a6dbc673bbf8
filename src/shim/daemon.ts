// The long-lived shim daemon (`serve`): serves the Task service on the socket
// `start` bound and passed as fd 3, logs to the bundle's log FIFO, publishes
// events, and exits once Shutdown finds no container left.
import * as fs from 'node:fs';
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
import { startTelemetry, type SpanRecord } from '../telemetry/index.js';
import { VERSION } from '../version.js';

const LISTEN_FD = 3;
/** The exporter loads in a worker thread; started once the first container is up, never on its path. */
const TELEMETRY_WARMUP_DELAY_MS = 250;
/** At exit, spans get this long to reach the collector. */
const TELEMETRY_FLUSH_MS = 2_000;
const here = typeof __dirname === 'string' ? __dirname : path.dirname(new URL(import.meta.url).pathname);

export interface DaemonOptions {
  /** Listening socket: an inherited fd (from `start`) or a path (tests). */
  listen?: { fd: number } | { path: string };
  childEntry?: string;
}

export async function runDaemon(flags: ShimFlags, options: DaemonOptions = {}): Promise<void> {
  const bundle = process.cwd();
  const log = createLogger(openLogFifo(bundle), flags.debug, { namespace: flags.namespace });
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
  const tracer = telemetry.enabled ? new TaskTracer(telemetry, process.env) : undefined;
  const engine = new NodeEngine({
    childEntry: options.childEntry ?? path.join(here, 'wasm-child.cjs'),
    ...(tracer ? { onChildSpans: (records: unknown[]) => telemetry.submit(records as SpanRecord[]) } : {}),
  });
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
    tracer?.endAll();
    await Promise.all([events.drain(now ? 0 : 2_000), telemetry.shutdown(now ? 0 : TELEMETRY_FLUSH_MS)]);
    events.close();
    process.exit(0);
  };
  const service = new TaskService({
    engine,
    events,
    log,
    shutdown: (now) => void exit(now),
    ...(tracer ? { traceparentFor: (id: string, execId: string) => tracer.traceparentFor(id, execId) } : {}),
  });
  const impl = tracer ? tracer.wrap(Task, service) : service;
  server.registerService(Task, impl);
  server.registerService(Task, impl, { name: 'containerd.task.v3.Task' });
  await server.listen(options.listen ?? { fd: LISTEN_FD });
  // Boot the first container's child while containerd is still sending Create.
  engine.warm();
  if (telemetry.enabled) setTimeout(() => telemetry.warmUp(), TELEMETRY_WARMUP_DELAY_MS).unref();
  log.info('serving', { id: flags.id, pid: process.pid, socket: flags.socket });
}
