// Telemetry facade for the daemon.
//
// Hot-path rule: nothing here waits for OpenTelemetry. Spans are recorded by the
// cheap SpanRecorder; finished records are queued and posted to a worker thread
// that loads the SDK + OTLP exporter in the background. When tracing is disabled
// no @opentelemetry module is ever loaded.

import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { readTelemetryConfig, type TelemetryConfig } from './config.js';
import { SpanRecorder, type SpanRecord } from './recorder.js';
import type { MainToWorker, WorkerInit, WorkerStats, WorkerToMain } from './protocol.js';

export * from './config.js';
export * from './propagation.js';
export * from './traceparent.js';
export * from './recorder.js';
export type { WorkerStats } from './protocol.js';

export type LogLevel = 'info' | 'warn' | 'error' | 'debug';
export type TelemetryLog = (level: LogLevel, msg: string) => void;

export interface StartTelemetryOptions {
  env: NodeJS.ProcessEnv;
  log: TelemetryLog;
  /** The worker entry. Default: telemetry-worker.mjs, worker.js or worker.ts next to this module. */
  workerUrl?: URL;
  /** Records kept while the worker loads (oldest dropped beyond this). Default 4096. */
  maxBufferedSpans?: number;
  /** Spawn the worker (in the background) as soon as a record is queued. Default true. */
  autoStart?: boolean;
  /** Reported as the instrumentation scope version. */
  scopeVersion?: string;
}

export type TelemetryState = 'disabled' | 'idle' | 'starting' | 'ready' | 'dead' | 'closed';

export interface Telemetry {
  readonly enabled: boolean;
  readonly config: TelemetryConfig;
  readonly recorder: SpanRecorder;
  readonly state: TelemetryState;
  /** Milliseconds from spawning the worker until it reported ready (undefined before). */
  readonly workerReadyMs: number | undefined;
  /** Queue records relayed from a child process (validated at the IPC seam). Never throws. */
  submit(records: SpanRecord[]): void;
  /** Calls listener with every batch of child records submitted; returns the unsubscribe function. */
  observeChildSpans(listener: (records: SpanRecord[]) => void): () => void;
  /** Start loading the exporter in the background (does not block). */
  warmUp(): void;
  /** Export everything queued so far; resolves (never rejects) within timeoutMs. */
  flush(timeoutMs?: number): Promise<void>;
  /** Bounded flush, then terminate the worker; resolves within timeoutMs even if the endpoint hangs. */
  shutdown(timeoutMs?: number): Promise<void>;
  /** Worker counters (for diagnostics and tests); undefined if unavailable within timeoutMs. */
  stats(timeoutMs?: number): Promise<WorkerStats | undefined>;
}

const DEFAULT_MAX_BUFFERED = 4096;
/** Dropped spans are reported at once for the first of an outage, then at most this often, and at exit. */
const DROP_REPORT_INTERVAL_MS = 30_000;

function defaultWorkerUrl(): URL {
  for (const name of ['telemetry-worker.mjs', 'worker.js', 'worker.ts']) {
    const u = new URL(`./${name}`, import.meta.url);
    try {
      if (existsSync(fileURLToPath(u))) return u;
    } catch {
      /* not a file: URL */
    }
  }
  return new URL('./worker.js', import.meta.url);
}

/**
 * A TypeScript worker entry (tests and development under tsx): on Node 20, tsx does
 * not install its loader in worker threads even though workers inherit execArgv, so
 * the worker registers tsx itself before importing the entry.
 */
function tsWorkerBootstrap(url: URL): string {
  let api = 'tsx/esm/api';
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    /* resolved from the working directory instead */
  }
  return `
const entry = ${JSON.stringify(url.href)};
try {
  await import(entry);
} catch (e) {
  if (!e || e.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
  const { register } = await import(${JSON.stringify(api)});
  register();
  await import(entry + '?tsx');
}
`;
}

function cleanEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function startTelemetry(opts: StartTelemetryOptions): Telemetry {
  const log: TelemetryLog = (level, msg) => {
    try {
      opts.log(level, msg);
    } catch {
      /* never throw into the daemon */
    }
  };
  const config = readTelemetryConfig(opts.env);
  for (const w of config.warnings) log('warn', `telemetry: ${w}`);
  const pid = process.pid;
  const observers = new Set<(records: SpanRecord[]) => void>();
  const observeChildSpans = (listener: (records: SpanRecord[]) => void): (() => void) => {
    observers.add(listener);
    return () => observers.delete(listener);
  };
  const notify = (records: SpanRecord[]): void => {
    for (const o of observers) {
      try {
        o(records);
      } catch {
        /* an observer's bug must not stop export */
      }
    }
  };

  if (!config.enabled) {
    log('debug', `telemetry: tracing disabled (${config.reason})`);
    const recorder = new SpanRecorder(() => undefined, {
      enabled: false,
      sampler: config.sampler,
      process: 'shim',
      pid,
    });
    return {
      enabled: false,
      config,
      recorder,
      state: 'disabled',
      workerReadyMs: undefined,
      submit: notify,
      observeChildSpans,
      warmUp: () => undefined,
      flush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
      stats: () => Promise.resolve(undefined),
    };
  }

  log('info', `telemetry: tracing on (${config.protocol} -> ${config.endpoint}, service.name=${config.serviceName})`);
  const maxBuffered = Math.max(1, opts.maxBufferedSpans ?? DEFAULT_MAX_BUFFERED);
  const autoStart = opts.autoStart ?? true;
  let state: TelemetryState = 'idle';
  let worker: Worker | undefined;
  let spawnedAt = 0;
  let readyMs: number | undefined;
  let pending: SpanRecord[] = [];
  let droppedWhileBuffering = 0;
  let postScheduled = false;
  let spawnScheduled = false;
  let nextId = 1;
  const waiters = new Map<number, (m: WorkerToMain | undefined) => void>();
  const readyWaiters = new Set<() => void>();
  let shutdownPromise: Promise<void> | undefined;
  let sinkErrorLogged = false;

  // Every dropped span is accounted for in the log, with the endpoint and a count.
  const where = `${config.endpoint} (${config.protocol})`;
  let sent = 0;
  let settled = 0;
  /** Records handed to the worker that no export has accounted for yet. */
  const inFlight = (): number => Math.max(0, sent - settled);
  let exportFailing = false;
  let unreported = 0;
  let unreportedWhy = '';
  let lastDropReport = -Infinity;
  let dropTimer: NodeJS.Timeout | undefined;
  const reportDrops = (): void => {
    if (dropTimer) clearTimeout(dropTimer);
    dropTimer = undefined;
    if (unreported === 0) return;
    log(
      'warn',
      `telemetry: span export to ${where} failed: ${unreportedWhy}; ${unreported} span${unreported === 1 ? '' : 's'} dropped`,
    );
    unreported = 0;
    lastDropReport = performance.now();
  };
  const dropped = (count: number, why: string, now = false): void => {
    if (count <= 0) return;
    unreported += count;
    unreportedWhy = why;
    const wait = lastDropReport + DROP_REPORT_INTERVAL_MS - performance.now();
    if (now || wait <= 0) reportDrops();
    else if (!dropTimer) {
      dropTimer = setTimeout(reportDrops, wait);
      dropTimer.unref();
    }
  };
  const exported = (ok: boolean, spans: number, error: string | undefined): void => {
    settled += spans;
    if (ok) {
      if (!exportFailing) return;
      exportFailing = false;
      reportDrops();
      log('info', `telemetry: span export to ${where} recovered`);
    } else {
      dropped(spans, error ?? 'export failed', !exportFailing);
      exportFailing = true;
    }
  };

  const settleAll = (): void => {
    for (const w of waiters.values()) w(undefined);
    waiters.clear();
    for (const r of readyWaiters) r();
    readyWaiters.clear();
  };

  const markDead = (why: string): void => {
    if (state === 'dead' || state === 'closed') return;
    const lost = pending.length + inFlight();
    state = 'dead';
    pending = [];
    log('error', `telemetry: export worker ${why}; tracing stopped`);
    dropped(lost, `the export worker ${why}`, true);
    settleAll();
    const w = worker;
    worker = undefined;
    if (w) w.terminate().catch(() => undefined);
  };

  const postPending = (): void => {
    postScheduled = false;
    if (state !== 'ready' || !worker || pending.length === 0) return;
    const records = pending;
    pending = [];
    sent += records.length;
    try {
      worker.postMessage({ type: 'spans', records } satisfies MainToWorker);
    } catch (e) {
      markDead(`could not be sent spans (${e instanceof Error ? e.message : String(e)})`);
    }
  };

  const schedulePost = (): void => {
    if (postScheduled) return;
    postScheduled = true;
    setImmediate(postPending);
  };

  const spawn = (): void => {
    spawnScheduled = false;
    if (state !== 'idle') return;
    state = 'starting';
    spawnedAt = performance.now();
    const init: WorkerInit = {
      config,
      ...(opts.scopeVersion ? { scopeVersion: opts.scopeVersion } : {}),
    };
    let w: Worker;
    try {
      const url = opts.workerUrl ?? defaultWorkerUrl();
      const workerOpts = { workerData: init, env: cleanEnv(opts.env), stdout: true, stderr: true };
      w = /\.[cm]?ts$/.test(url.pathname)
        ? new Worker(tsWorkerBootstrap(url), { ...workerOpts, eval: true })
        : new Worker(url, workerOpts);
    } catch (e) {
      markDead(`could not start (${e instanceof Error ? e.message : String(e)})`);
      return;
    }
    worker = w;
    w.unref();
    // Keep whatever the SDK prints off the daemon's stdio; surface it as debug logs.
    for (const s of [w.stdout, w.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        const t = d.trim();
        if (t) log('debug', `telemetry worker: ${t.slice(0, 2000)}`);
      });
      s.on('error', () => undefined);
    }
    w.on('message', (m: WorkerToMain) => {
      if (worker !== w) return;
      switch (m?.type) {
        case 'ready':
          if (state !== 'starting') return;
          state = 'ready';
          readyMs = Math.round(performance.now() - spawnedAt);
          log('debug', `telemetry: exporter ready in ${readyMs} ms (${config.protocol} -> ${config.endpoint})`);
          for (const r of readyWaiters) r();
          readyWaiters.clear();
          postPending();
          break;
        case 'init-error':
          markDead(`failed to load (${m.error})`);
          break;
        case 'log':
          log(m.level, `telemetry: ${m.msg}`);
          break;
        case 'exported':
          exported(m.ok, m.spans, m.error);
          break;
        case 'dropped':
          settled += m.spans;
          dropped(m.spans, m.reason, true);
          break;
        case 'flushed':
        case 'stats':
        case 'shutdown-done': {
          const cb = waiters.get(m.id);
          if (cb) {
            waiters.delete(m.id);
            cb(m);
          }
          break;
        }
        default:
          break;
      }
    });
    w.on('error', (e) => {
      if (worker === w) markDead(`crashed (${e instanceof Error ? e.message : String(e)})`);
    });
    w.on('exit', (code) => {
      if (worker === w) markDead(`exited (code ${code})`);
    });
    w.on('messageerror', () => undefined);
  };

  const scheduleSpawn = (): void => {
    if (state !== 'idle' || spawnScheduled) return;
    spawnScheduled = true;
    const t = setTimeout(spawn, 0);
    t.unref();
  };

  const enqueue = (rec: SpanRecord): void => {
    if (state === 'dead' || state === 'closed') return;
    if (pending.length >= maxBuffered) {
      pending.shift();
      dropped(1, `more than ${maxBuffered} spans waiting for the exporter`, droppedWhileBuffering++ === 0);
    } else if (pending.length === 0) {
      droppedWhileBuffering = 0;
    }
    pending.push(rec);
    if (state === 'ready') schedulePost();
    else if (state === 'idle' && autoStart) scheduleSpawn();
  };

  const recorder = new SpanRecorder(enqueue, {
    enabled: true,
    sampler: config.sampler,
    process: 'shim',
    pid,
    onError: (e) => {
      if (sinkErrorLogged) return;
      sinkErrorLogged = true;
      log('warn', `telemetry: dropping a span: ${e instanceof Error ? e.message : String(e)}`);
    },
  });

  /** Wait until the worker is ready, dead or the deadline passes. */
  const whenReady = (deadline: number): Promise<boolean> => {
    if (state === 'idle') spawn();
    if (state === 'ready') return Promise.resolve(true);
    if (state !== 'starting') return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        readyWaiters.delete(done);
        resolve(state === 'ready');
      };
      readyWaiters.add(done);
      // done runs later (a worker message or this timer), never before timer is set.
      const timer = setTimeout(done, Math.max(0, deadline - performance.now()));
    });
  };

  /** Send a request to the ready worker and await its reply until the deadline. */
  const request = (type: 'flush' | 'stats' | 'shutdown', deadline: number): Promise<WorkerToMain | undefined> => {
    const w = worker;
    if (state !== 'ready' || !w) return Promise.resolve(undefined);
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          waiters.delete(id);
          resolve(undefined);
        },
        Math.max(0, deadline - performance.now()),
      );
      waiters.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      try {
        w.postMessage({ type, id } satisfies MainToWorker);
      } catch {
        waiters.delete(id);
        clearTimeout(timer);
        resolve(undefined);
      }
    });
  };

  const flush = async (timeoutMs = 2000): Promise<void> => {
    try {
      const deadline = performance.now() + timeoutMs;
      if (state === 'idle' && pending.length === 0) return;
      if (!(await whenReady(deadline))) return;
      postPending();
      const reply = await request('flush', deadline);
      if (reply === undefined && state === 'ready')
        log('debug', `telemetry: flush did not finish within ${timeoutMs} ms`);
    } catch (e) {
      log('warn', `telemetry: flush failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const shutdown = (timeoutMs = 2000): Promise<void> => {
    if (shutdownPromise) return shutdownPromise;
    shutdownPromise = (async () => {
      const start = performance.now();
      const deadline = start + timeoutMs;
      // Leave a little time for terminate() itself.
      const exportDeadline = deadline - Math.min(150, timeoutMs / 4);
      try {
        if (state === 'idle' && pending.length === 0) {
          state = 'closed';
          return;
        }
        if (!(timeoutMs > 0)) {
          // Immediate shutdown: no export attempt.
          dropped(pending.length + inFlight(), 'immediate shutdown (no time to export)');
          return;
        }
        if (await whenReady(exportDeadline)) {
          postPending();
          const reply = await request('shutdown', exportDeadline);
          if (reply === undefined && state === 'ready') {
            dropped(inFlight(), `the export did not finish within ${timeoutMs} ms at exit`);
          } else if (reply !== undefined) {
            // Exported or reported as failed: anything else never left the SDK's queue.
            dropped(inFlight(), 'not exported by exit (the export queue was full)');
          }
        } else if (state !== 'dead') {
          dropped(pending.length, `the exporter was not ready within ${timeoutMs} ms at exit`);
        }
      } catch (e) {
        log('warn', `telemetry: shutdown: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        reportDrops(); // whatever was dropped goes in the log before the process exits
        const w = worker;
        worker = undefined;
        if (state !== 'dead') state = 'closed';
        pending = [];
        settleAll();
        if (w) {
          const remaining = Math.max(10, deadline - performance.now());
          await Promise.race([
            w.terminate().catch(() => undefined),
            new Promise<void>((r) => setTimeout(r, remaining).unref()),
          ]);
        }
      }
    })();
    return shutdownPromise;
  };

  const stats = async (timeoutMs = 2000): Promise<WorkerStats | undefined> => {
    const deadline = performance.now() + timeoutMs;
    if (state !== 'ready' && state !== 'starting') return undefined;
    if (!(await whenReady(deadline))) return undefined;
    postPending();
    const reply = await request('stats', deadline);
    return reply && 'stats' in reply ? reply.stats : undefined;
  };

  return {
    enabled: true,
    config,
    recorder,
    get state() {
      return state;
    },
    get workerReadyMs() {
      return readyMs;
    },
    submit(records: SpanRecord[]): void {
      try {
        if (!Array.isArray(records)) return;
        notify(records);
        for (const r of records) enqueue(r);
      } catch {
        /* never throw into the daemon */
      }
    },
    observeChildSpans,
    warmUp(): void {
      scheduleSpawn();
    },
    flush,
    shutdown,
    stats,
  };
}
