// The long-lived shim daemon (`serve`): serves the Task service on the socket
// `start` bound and passed as fd 3, logs to the bundle's log FIFO, publishes
// events, and exits once Shutdown finds no container left.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Task } from '../gen/containerd/task/v2/shim_pb.js';
import { TtrpcServer } from '../ttrpc/server.js';
import { NodeEngine } from '../wasm/node-engine.js';
import { EventPublisher } from './events.js';
import type { ShimFlags } from './flags.js';
import { createLogger, openLogFifo } from './log.js';
import { TaskService } from './task-service.js';

const LISTEN_FD = 3;
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
  const engine = new NodeEngine({ childEntry: options.childEntry ?? path.join(here, 'wasm-child.cjs') });
  const server = new TtrpcServer({
    onError: (err) => log.warn(`ttrpc: ${err.message}`, { kind: err.kind }),
  });

  let exiting = false;
  const exit = async (now: boolean) => {
    if (exiting) return;
    exiting = true;
    log.info('shutting down');
    await events.drain(now ? 0 : 2_000);
    events.close();
    // Exiting closes every connection at once, which is what containerd waits for.
    if (flags.socket) fs.rmSync(flags.socket, { force: true });
    process.exit(0);
  };
  const service = new TaskService({ engine, events, log, shutdown: (now) => void exit(now) });
  server.registerService(Task, service);
  server.registerService(Task, service, { name: 'containerd.task.v3.Task' });
  await server.listen(options.listen ?? { fd: LISTEN_FD });
  // Boot the first container's child while containerd is still sending Create.
  engine.warm();
  log.info('serving', { id: flags.id, pid: process.pid, socket: flags.socket });
}
