// Export worker (worker_threads entry). The only place that imports the
// OpenTelemetry SDK: it receives finished SpanRecords from the main thread, turns
// them into ReadableSpans and hands them to a BatchSpanProcessor feeding the OTLP
// exporter chosen by the configured protocol. The SDK packages configure
// themselves from the environment: the exporter its endpoint, headers, timeout,
// compression and TLS; the batch processor its OTEL_BSP_* limits; the resource
// detectors service.*, host.*, process.* and OTEL_RESOURCE_ATTRIBUTES. Every
// export's outcome goes back to the main thread, which reports dropped spans.
//
// It must never take the daemon down: everything is caught, uncaught exceptions
// and unhandled rejections (e.g. HPE_INVALID_CONSTANT from an endpoint answering
// garbage) are swallowed here, and the main side copes with the worker dying.

import { parentPort, workerData } from 'node:worker_threads';
import type { ReadableSpan, SpanExporter, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Resource } from '@opentelemetry/resources';
import type { ExportResult } from '@opentelemetry/core';
import type { EnabledTelemetryConfig } from './config.js';
import type { SpanRecord, HrTime } from './recorder.js';
import { parseSpanRecord } from './records.js';
import { DEFAULT_SERVICE_NAME } from './config.js';
import {
  ATTR_PROCESS_EXECUTABLE_NAME,
  ATTR_PROCESS_PARENT_PID,
  ATTR_PROCESS_PID,
  ATTR_WASMTS_PROCESS,
  SCHEMA_URL,
} from './semconv.js';
import type { MainToWorker, WorkerToMain, WorkerInit, WorkerStats } from './protocol.js';

const port = parentPort;
const init = workerData as WorkerInit;

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
// A long-lived daemon must not go quiet for good: the limit is per minute.
setInterval(() => seen.clear(), 60_000).unref();
function log(level: 'info' | 'warn' | 'error' | 'debug', msg: string): void {
  if (seen.has(msg)) return;
  if (seen.size >= MAX_DISTINCT_LOGS) return;
  seen.add(msg);
  if (seen.size === MAX_DISTINCT_LOGS) msg += ' (further telemetry messages suppressed)';
  post({ type: 'log', level, msg });
}

const errText = (e: unknown): string =>
  e instanceof Error
    ? `${(e as NodeJS.ErrnoException).code ? (e as NodeJS.ErrnoException).code + ': ' : ''}${e.message}`
    : String(e);

// Never die of an exporter failure.
process.on('uncaughtException', (err) => log('warn', `telemetry worker: uncaught exception ignored: ${errText(err)}`));
process.on('unhandledRejection', (err) =>
  log('warn', `telemetry worker: unhandled rejection ignored: ${errText(err)}`),
);

const stats: WorkerStats = {
  received: 0,
  invalid: 0,
  exported: 0,
  failedExports: 0,
  failedSpans: 0,
  lastError: undefined,
};

// --- messages that arrive while the SDK loads are kept ----------------------
const early: MainToWorker[] = [];
let handler: ((m: MainToWorker) => void) | undefined;
port?.on('message', (m: MainToWorker) => {
  if (handler) handler(m);
  else early.push(m);
});

const KIND: Record<string, number> = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 };

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
      ExporterCtor = (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter;
      break;
    case 'http/json':
      ExporterCtor = (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter;
      break;
    default:
      ExporterCtor = (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter;
      break;
  }
  const { diag, DiagLogLevel } = await import('@opentelemetry/api');

  // OTEL_LOG_LEVEL (default warn) -> diag, forwarded to the daemon's log.
  const lvlName = (process.env.OTEL_LOG_LEVEL ?? '').trim().toUpperCase();
  const lvl = (DiagLogLevel as unknown as Record<string, number>)[lvlName] ?? DiagLogLevel.WARN;
  diag.setLogger(
    {
      error: (m, ...a) => log('error', `otel: ${m}${a.length ? ' ' + a.map(errText).join(' ') : ''}`),
      warn: (m, ...a) => {
        // The batch processor's own drops (queue full) are counted with the others by the main thread.
        const full = /^Dropped (\d+) spans because maxQueueSize reached/.exec(m);
        if (full)
          return post({
            type: 'dropped',
            spans: Number(full[1]),
            reason: 'the export queue was full (OTEL_BSP_MAX_QUEUE_SIZE)',
          });
        log('warn', `otel: ${m}${a.length ? ' ' + a.map(errText).join(' ') : ''}`);
      },
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

  // No options: the exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT / HEADERS / TIMEOUT /
  // COMPRESSION / CERTIFICATE… itself (cfg.endpoint is the same URL, for log lines).
  const inner = new ExporterCtor({});
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], cb: (r: ExportResult) => void): void {
      let done = false;
      const finish = (r: ExportResult): void => {
        if (done) return;
        done = true;
        if (r.code === core.ExportResultCode.SUCCESS) {
          stats.exported += spans.length;
          post({ type: 'exported', ok: true, spans: spans.length });
        } else {
          stats.failedExports++;
          stats.failedSpans += spans.length;
          stats.lastError = errText(r.error ?? 'export failed');
          post({ type: 'exported', ok: false, spans: spans.length, error: stats.lastError });
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

  // The daemon's resource: service.name (OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES, else ours),
  // service.instance.id, host.*, process.* of the daemon, telemetry.sdk.*.
  const detected = resources.detectResources({
    detectors: [
      resources.hostDetector,
      resources.processDetector,
      resources.serviceInstanceIdDetector,
      resources.envDetector,
    ],
  });
  await detected.waitForAsyncAttributes?.();
  const daemon = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME }))
    .merge(detected)
    .merge(resources.resourceFromAttributes({ [ATTR_WASMTS_PROCESS]: 'shim' }, { schemaUrl: SCHEMA_URL }));
  // A Wasm child's spans: the same service, host and runtime, its own process.
  const shared = Object.fromEntries(
    Object.entries(daemon.attributes).filter(([k]) => !k.startsWith('process.') || k.startsWith('process.runtime.')),
  );
  const childResources = new Map<number, Resource>();
  const resourceOfChild = (pid: number): Resource => {
    let r = childResources.get(pid);
    if (!r) {
      if (childResources.size >= 1024) childResources.clear();
      r = resources.resourceFromAttributes(
        {
          ...shared,
          [ATTR_PROCESS_PID]: pid,
          // the worker is a thread of the daemon: its pid is the daemon's
          [ATTR_PROCESS_PARENT_PID]: process.pid,
          [ATTR_PROCESS_EXECUTABLE_NAME]: 'node',
          [ATTR_WASMTS_PROCESS]: 'child',
        },
        { schemaUrl: SCHEMA_URL },
      );
      childResources.set(pid, r);
    }
    return r;
  };
  const scope = { name: 'wasmts', ...(init.scopeVersion ? { version: init.scopeVersion } : {}), schemaUrl: SCHEMA_URL };
  const traceStateOf = (s: string | undefined) => (s ? new core.TraceState(s) : undefined);

  const toReadable = (raw: SpanRecord): ReadableSpan | undefined => {
    const rec = parseSpanRecord(raw);
    if (!rec) return undefined;
    const ctx = {
      traceId: rec.traceId,
      spanId: rec.spanId,
      traceFlags: rec.traceFlags,
      traceState: traceStateOf(rec.traceState),
    };
    return {
      name: rec.name,
      kind: KIND[rec.kind] ?? 0,
      spanContext: () => ctx,
      parentSpanContext: rec.parentSpanId
        ? { traceId: rec.traceId, spanId: rec.parentSpanId, traceFlags: rec.traceFlags, isRemote: !!rec.parentIsRemote }
        : undefined,
      startTime: rec.startTime,
      endTime: rec.endTime,
      duration: hrDuration(rec.startTime, rec.endTime),
      ended: true,
      status: rec.status,
      attributes: rec.attributes,
      links: rec.links.map((l) => ({ context: l.context, attributes: l.attributes, droppedAttributesCount: 0 })),
      events: rec.events.map((e) => ({
        name: e.name,
        time: e.time,
        attributes: e.attributes,
        droppedAttributesCount: 0,
      })),
      resource: rec.process === 'child' ? resourceOfChild(rec.pid) : daemon,
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
        default:
          break;
      }
    } catch (e) {
      log('warn', `telemetry worker: ${errText(e)}`);
    }
  };
  post({ type: 'ready' });
  for (const m of early.splice(0)) handler(m);
}

main().catch((e) => {
  post({ type: 'init-error', error: errText(e) });
});
