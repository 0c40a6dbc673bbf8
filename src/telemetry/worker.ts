// Export worker (worker_threads entry). The only place that imports the
// OpenTelemetry SDK: it receives finished SpanRecords from the main thread, turns
// them into ReadableSpans and hands them to a BatchSpanProcessor feeding the OTLP
// exporter chosen by the configured protocol.
//
// It must never take the daemon down: everything is caught, uncaught exceptions
// and unhandled rejections (e.g. HPE_INVALID_CONSTANT from an endpoint answering
// garbage) are swallowed here, and the main side copes with the worker dying.

import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { ReadableSpan, SpanExporter, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Resource } from '@opentelemetry/resources';
import type { ExportResult } from '@opentelemetry/core';
import type { EnabledTelemetryConfig } from './config.js';
import type { SpanRecord, HrTime, ProcessRole } from './recorder.js';
import type { MainToWorker, WorkerToMain, WorkerInit, WorkerStats } from './protocol.js';

const port = parentPort;
const init = workerData as WorkerInit;
const loadStart = performance.now();

function post(msg: WorkerToMain): void {
  try {
    port?.postMessage(msg);
  } catch {
    /* main side gone */
  }
}

// --- logging, rate limited -------------------------------------------------
const seen = new Set<string>();
const MAX_DISTINCT_LOGS = 50;
function log(level: 'info' | 'warn' | 'error' | 'debug', msg: string): void {
  if (seen.has(msg)) return;
  if (seen.size >= MAX_DISTINCT_LOGS) return;
  seen.add(msg);
  if (seen.size === MAX_DISTINCT_LOGS) msg += ' (further telemetry messages suppressed)';
  post({ type: 'log', level, msg });
}

const errText = (e: unknown): string =>
  e instanceof Error ? `${(e as NodeJS.ErrnoException).code ? (e as NodeJS.ErrnoException).code + ': ' : ''}${e.message}` : String(e);

// Never die of an exporter failure.
process.on('uncaughtException', (err) => log('warn', `telemetry worker: uncaught exception ignored: ${errText(err)}`));
process.on('unhandledRejection', (err) => log('warn', `telemetry worker: unhandled rejection ignored: ${errText(err)}`));

const stats: WorkerStats = { received: 0, invalid: 0, exported: 0, failedExports: 0, failedSpans: 0, lastError: undefined };

// --- messages that arrive while the SDK loads are kept ----------------------
const early: MainToWorker[] = [];
let handler: ((m: MainToWorker) => void) | undefined;
port?.on('message', (m: MainToWorker) => {
  if (handler) handler(m);
  else early.push(m);
});

const KIND: Record<string, number> = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 };
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const isHr = (t: unknown): t is HrTime =>
  Array.isArray(t) && t.length === 2 && Number.isFinite(t[0]) && Number.isFinite(t[1]);

function hrDuration(a: HrTime, b: HrTime): HrTime {
  let s = b[0] - a[0];
  let n = b[1] - a[1];
  if (n < 0) {
    s -= 1;
    n += 1e9;
  }
  return [s, n];
}

async function main(): Promise<void> {
  const cfg: EnabledTelemetryConfig = init.config;
  const [core, resources, sdk] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  let ExporterCtor: new (c: Record<string, unknown>) => SpanExporter;
  switch (cfg.protocol) {
    case 'grpc':
      ExporterCtor = (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter as never;
      break;
    case 'http/json':
      ExporterCtor = (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter as never;
      break;
    default:
      ExporterCtor = (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter as never;
      break;
  }
  const { diag, DiagLogLevel } = await import('@opentelemetry/api');

  // OTEL_LOG_LEVEL (default warn) -> diag, forwarded to the daemon's log.
  const lvlName = (process.env.OTEL_LOG_LEVEL ?? '').trim().toUpperCase();
  const lvl = (DiagLogLevel as unknown as Record<string, number>)[lvlName] ?? DiagLogLevel.WARN;
  diag.setLogger(
    {
      error: (m, ...a) => log('error', `otel: ${m}${a.length ? ' ' + a.map(errText).join(' ') : ''}`),
      warn: (m, ...a) => log('warn', `otel: ${m}${a.length ? ' ' + a.map(errText).join(' ') : ''}`),
      info: (m) => log('info', `otel: ${m}`),
      debug: (m) => log('debug', `otel: ${m}`),
      verbose: (m) => log('debug', `otel: ${m}`),
    },
    { logLevel: lvl, suppressOverrideMessage: true },
  );
  // Export failures are reported (once per outage) by the exporter wrapper below.
  core.setGlobalErrorHandler((e) => {
    stats.lastError = errText(e);
  });

  // The exporter reads OTEL_EXPORTER_OTLP_[TRACES_]HEADERS / _TIMEOUT / _COMPRESSION /
  // certificates from the environment itself; the endpoint is passed resolved.
  const inner = new ExporterCtor({ url: cfg.endpoint });
  let failing = false;
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], cb: (r: ExportResult) => void): void {
      let done = false;
      const finish = (r: ExportResult): void => {
        if (done) return;
        done = true;
        if (r.code === core.ExportResultCode.SUCCESS) {
          stats.exported += spans.length;
          if (failing) log('info', `span export to ${cfg.endpoint} recovered`);
          failing = false;
          seen.clear();
        } else {
          stats.failedExports++;
          stats.failedSpans += spans.length;
          stats.lastError = errText(r.error ?? 'export failed');
          if (!failing) {
            failing = true;
            post({
              type: 'log',
              level: 'warn',
              msg: `span export to ${cfg.endpoint} (${cfg.protocol}) failed: ${stats.lastError}; dropping spans until it recovers`,
            });
          }
        }
        try {
          cb(r);
        } catch {
          /* ignore */
        }
      };
      try {
        inner.export(spans, finish);
      } catch (e) {
        finish({ code: core.ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
      }
    },
    shutdown: () => inner.shutdown().catch(() => undefined),
    forceFlush: () => inner.forceFlush?.().catch(() => undefined) ?? Promise.resolve(),
  };

  // Reads OTEL_BSP_SCHEDULE_DELAY / _EXPORT_TIMEOUT / _MAX_QUEUE_SIZE / _MAX_EXPORT_BATCH_SIZE.
  const bsp: BatchSpanProcessor = new sdk.BatchSpanProcessor(exporter);

  const base = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ ...cfg.resourceAttributes }));
  const resourceCache = new Map<string, Resource>();
  const resourceFor = (role: ProcessRole, pid: number): Resource => {
    const key = `${role}:${pid}`;
    let r = resourceCache.get(key);
    if (!r) {
      if (resourceCache.size >= 1024) resourceCache.clear();
      r = base.merge(
        resources.resourceFromAttributes({
          'service.name': cfg.serviceName,
          'process.pid': pid,
          'process.runtime.name': 'nodejs',
          'process.runtime.version': process.versions.node,
          'wasmts.process': role,
        }),
      );
      resourceCache.set(key, r);
    }
    return r;
  };
  const scope = { name: 'wasmts', ...(init.scopeVersion ? { version: init.scopeVersion } : {}) };

  const toReadable = (rec: SpanRecord): ReadableSpan | undefined => {
    if (!rec || typeof rec !== 'object') return undefined;
    if (!HEX32.test(rec.traceId) || !HEX16.test(rec.spanId)) return undefined;
    if (rec.parentSpanId !== undefined && !HEX16.test(rec.parentSpanId)) return undefined;
    if (!isHr(rec.startTime) || !isHr(rec.endTime)) return undefined;
    const traceFlags = Number(rec.traceFlags) & 0xff;
    const ctx = { traceId: rec.traceId, spanId: rec.spanId, traceFlags };
    const role: ProcessRole = rec.process === 'child' ? 'child' : 'shim';
    const pid = Number.isInteger(rec.pid) ? rec.pid : role === 'shim' ? init.shimPid : 0;
    return {
      name: String(rec.name),
      kind: KIND[rec.kind] ?? 0,
      spanContext: () => ctx,
      parentSpanContext: rec.parentSpanId
        ? { traceId: rec.traceId, spanId: rec.parentSpanId, traceFlags, isRemote: !!rec.parentIsRemote }
        : undefined,
      startTime: rec.startTime,
      endTime: rec.endTime,
      duration: hrDuration(rec.startTime, rec.endTime),
      ended: true,
      status: rec.status && typeof rec.status.code === 'number' ? rec.status : { code: 0 },
      attributes: rec.attributes ?? {},
      links: (rec.links ?? []).map((l) => ({
        context: { ...l.context, traceFlags: Number(l.context?.traceFlags) & 0xff },
        attributes: l.attributes ?? {},
        droppedAttributesCount: 0,
      })),
      events: (rec.events ?? []).map((e) => ({
        name: String(e.name),
        time: e.time,
        attributes: e.attributes ?? {},
        droppedAttributesCount: 0,
      })),
      resource: resourceFor(role, pid),
      instrumentationScope: scope,
      droppedAttributesCount: rec.droppedAttributesCount ?? 0,
      droppedEventsCount: rec.droppedEventsCount ?? 0,
      droppedLinksCount: rec.droppedLinksCount ?? 0,
    } as ReadableSpan;
  };

  let shuttingDown = false;
  handler = (m: MainToWorker): void => {
    try {
      switch (m?.type) {
        case 'spans':
          if (shuttingDown) return;
          for (const rec of m.records ?? []) {
            stats.received++;
            const span = toReadable(rec);
            if (!span) {
              stats.invalid++;
              continue;
            }
            try {
              bsp.onEnd(span);
            } catch (e) {
              stats.lastError = errText(e);
            }
          }
          break;
        case 'flush':
          // forceFlush exports what is queued; the exporter's forceFlush also waits for
          // exports already in flight (started by the schedule timer).
          bsp
            .forceFlush()
            .then(() => exporter.forceFlush?.())
            .then(
              () => post({ type: 'flushed', id: m.id, ok: true, stats: { ...stats } }),
              (e: unknown) => post({ type: 'flushed', id: m.id, ok: false, error: errText(e), stats: { ...stats } }),
            );
          break;
        case 'stats':
          post({ type: 'stats', id: m.id, stats: { ...stats } });
          break;
        case 'shutdown':
          shuttingDown = true;
          bsp.shutdown().then(
            () => post({ type: 'shutdown-done', id: m.id, stats: { ...stats } }),
            () => post({ type: 'shutdown-done', id: m.id, stats: { ...stats } }),
          );
          break;
        case 'selftest-throw':
          setTimeout(() => {
            throw new Error('selftest: uncaught in worker');
          }, 0);
          void Promise.reject(new Error('selftest: unhandled rejection in worker'));
          break;
        default:
          break;
      }
    } catch (e) {
      log('warn', `telemetry worker: ${errText(e)}`);
    }
  };
  post({ type: 'ready', loadMs: Math.round(performance.now() - loadStart) });
  for (const m of early.splice(0)) handler(m);
}

main().catch((e) => {
  post({ type: 'init-error', error: errText(e) });
});
