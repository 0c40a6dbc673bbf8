// `wasmts traces`: a local OTLP receiver plus trace viewer, for seeing the
// shim's traces without Jaeger.
//
//   wasmts traces                 serve; print each trace's waterfall as it settles
//   wasmts traces --once          print the first complete trace and exit
//   wasmts traces --trace <id>    print that trace once it has arrived and exit
import { parseArgs } from 'node:util';
import { startOtlpReceiver, type OtlpReceiver } from '../otlp/receiver.js';
import { handleViewerRequest } from './web.js';
import type { ReceivedSpan } from '../otlp/convert.js';
import { layoutTrace } from './tree.js';
import { renderWaterfall } from './waterfall.js';

export interface TracesIo {
  stdout?: { write(s: string): unknown; columns?: number; isTTY?: boolean };
  stderr?: { write(s: string): unknown };
  /** Stops serve mode (as SIGINT does) and cancels --once / --trace waits. */
  signal?: AbortSignal;
}

const USAGE = `Usage: wasmts traces [options]

Receives OTLP traces (HTTP and gRPC) and shows them: a waterfall per trace in
the terminal, and a web viewer on the HTTP port.

Options:
  --host <addr>        listen address (default 127.0.0.1)
  --http-port <port>   OTLP/HTTP and web viewer port (default 4318; 0 = any free port)
  --grpc-port <port>   OTLP/gRPC port (default 4317; 0 = any free port; off = no gRPC)
  --max-spans <n>      spans kept in memory, oldest dropped first (default 10000)
  --trace <id>         print the waterfall of this trace (32 hex digits or a
                       traceparent) once it has arrived, then exit
  --once               print the first complete trace, then exit
  --wait <sec>         with --trace / --once: give up after this long (default 30; 0 = never)
  --settle <sec>       draw a trace once no span of it arrived for this long (default 1)
  --width <cols>       waterfall width (default: the terminal's, else 100)
  --color, --no-color  force ANSI colours on or off (default: on for a terminal)
  -h, --help           this text

Point the shim at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
(or OTEL_EXPORTER_OTLP_PROTOCOL=grpc and http://127.0.0.1:4317).
`;

class UsageError extends Error {}

function port(v: string | undefined, def: number, flag: string, allowOff = false): number | null {
  if (v === undefined) return def;
  if (allowOff && /^(off|none|no|false)$/i.test(v)) return null;
  if (!/^\d+$/.test(v) || Number(v) > 65535)
    throw new UsageError(
      `${flag} must be a port number (0-65535)${allowOff ? ' or off' : ''}, got ${JSON.stringify(v)}`,
    );
  return Number(v);
}

function positive(v: string | undefined, flag: string, allowZero: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
    throw new UsageError(
      `${flag} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${JSON.stringify(v)}`,
    );
  return n;
}

/** Accepts 32 hex digits or a W3C traceparent ("00-<trace id>-<span id>-<flags>"). */
export function parseTraceId(v: string): string {
  const s = v.trim().toLowerCase();
  if (/^[0-9a-f]{32}$/.test(s)) return s;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(s);
  if (m) return m[1];
  throw new UsageError(`--trace needs a trace id (32 hex digits) or a traceparent, got ${JSON.stringify(v)}`);
}

/**
 * A trace looks complete when all its spans hang under one top-level span.
 * 'root' = that span has no parent; 'remote-root' = its parent is not here
 * (e.g. a containerd span exported elsewhere, or a shim span still in its
 * exporter's batch), which deserves a longer wait.
 */
export function completeness(spans: ReceivedSpan[]): 'root' | 'remote-root' | 'partial' {
  const top = layoutTrace(spans).filter((r) => r.depth === 0);
  if (top.length !== 1) return 'partial';
  return top[0].orphan ? 'remote-root' : 'root';
}

export async function tracesMain(argv: string[], io: TracesIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const errLine = (msg: string): void => void stderr.write(`wasmts traces: ${msg}\n`);

  const parse = (args: string[]) =>
    parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        'http-port': { type: 'string' },
        'grpc-port': { type: 'string' },
        'max-spans': { type: 'string' },
        trace: { type: 'string' },
        once: { type: 'boolean' },
        wait: { type: 'string' },
        settle: { type: 'string' },
        width: { type: 'string' },
        color: { type: 'boolean' },
        'no-color': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  let values: ReturnType<typeof parse>['values'];
  let opts: {
    host: string;
    httpPort: number | null;
    grpcPort: number | null;
    maxSpans: number | undefined;
    trace: string | undefined;
    waitMs: number;
    settleMs: number;
    width: number;
    color: boolean;
  };
  try {
    values = parse(argv).values;
    if (values.help) {
      stdout.write(USAGE);
      return 0;
    }
    if (values.trace !== undefined && values.once) throw new UsageError('--trace and --once do not go together');
    const maxSpans = positive(values['max-spans'], '--max-spans', false);
    const wait = positive(values.wait, '--wait', true) ?? 30;
    const settle = positive(values.settle, '--settle', false) ?? 1;
    const width = positive(values.width, '--width', false);
    opts = {
      host: values.host ?? '127.0.0.1',
      httpPort: port(values['http-port'], 4318, '--http-port'),
      grpcPort: port(values['grpc-port'], 4317, '--grpc-port', true),
      maxSpans: maxSpans === undefined ? undefined : Math.floor(maxSpans),
      trace: values.trace === undefined ? undefined : parseTraceId(values.trace),
      waitMs: wait * 1000,
      settleMs: settle * 1000,
      width: Math.floor(width ?? (stdout.columns && stdout.columns > 0 ? stdout.columns : 100)),
      color: values['no-color'] ? false : values.color ? true : !!stdout.isTTY && !process.env.NO_COLOR,
    };
  } catch (err) {
    errLine(`${(err as Error).message} (see --help)`);
    return 2;
  }

  let receiver: OtlpReceiver;
  try {
    receiver = await startOtlpReceiver({
      host: opts.host,
      httpPort: opts.httpPort,
      grpcPort: opts.grpcPort,
      maxSpans: opts.maxSpans,
      routes: handleViewerRequest,
    });
  } catch (err) {
    errLine((err as Error).message);
    return 1;
  }

  const waterfall = (spans: ReceivedSpan[]): string => renderWaterfall(spans, { width: opts.width, color: opts.color });
  const oneShot = opts.trace !== undefined || values.once === true;
  const info = oneShot ? stderr : stdout;
  const lines = ['wasmts traces: receiving OTLP traces'];
  if (receiver.httpUrl) lines.push(`  OTLP/HTTP  ${receiver.httpUrl}/v1/traces`);
  if (receiver.grpcUrl) lines.push(`  OTLP/gRPC  ${receiver.grpcUrl}`);
  if (receiver.httpUrl) lines.push(`  viewer     ${receiver.httpUrl}/`);
  lines.push('Send traces here with:');
  if (receiver.httpUrl) lines.push(`  OTEL_EXPORTER_OTLP_ENDPOINT=${receiver.httpUrl}`);
  if (receiver.grpcUrl)
    lines.push(`  OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=${receiver.grpcUrl}`);
  if (opts.trace) lines.push(`Waiting for trace ${opts.trace}…`);
  else if (values.once) lines.push('Waiting for the first complete trace…');
  else lines.push('Waiting for traces; Ctrl-C to stop.');
  info.write(`${lines.join('\n')}\n`);

  // Stop on SIGINT / SIGTERM / io.signal, whatever the mode.
  let stop!: () => void;
  const stopped = new Promise<'stopped'>((resolve) => {
    stop = () => resolve('stopped');
  });
  const onSignal = (): void => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  io.signal?.addEventListener('abort', onSignal, { once: true });
  if (io.signal?.aborted) stop();

  // Per-trace quiet timers: fire `settled` when no span arrived for opts.settleMs.
  const timers = new Map<string, NodeJS.Timeout>();
  const lastAt = new Map<string, number>();
  let settled: (traceId: string) => void = () => {};
  const offSpans = receiver.onSpans((batch) => {
    const now = Date.now();
    for (const traceId of new Set(batch.map((s) => s.traceId))) {
      lastAt.set(traceId, now);
      clearTimeout(timers.get(traceId));
      timers.set(
        traceId,
        setTimeout(() => {
          timers.delete(traceId);
          settled(traceId);
        }, opts.settleMs),
      );
    }
  });

  let deadline: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    if (oneShot && opts.waitMs > 0) deadline = setTimeout(() => resolve('timeout'), opts.waitMs);
  });

  let code = 0;
  try {
    if (opts.trace !== undefined) {
      const id = opts.trace;
      const arrived = new Promise<'done'>((resolve) => {
        settled = (traceId) => {
          if (traceId === id) resolve('done');
        };
      });
      const how = await Promise.race([arrived, timedOut, stopped]);
      const spans = receiver.trace(id);
      if (spans.length > 0 && how !== 'stopped') {
        stdout.write(waterfall(spans));
        if (how === 'timeout') {
          errLine(`trace ${id} was still receiving spans when --wait ran out`);
          code = 1;
        }
      } else if (how === 'timeout') {
        errLine(`trace ${id} did not arrive within ${opts.waitMs / 1000} s (${describe(receiver)})`);
        code = 1;
      } else code = 130;
    } else if (values.once) {
      const longSettle = Math.max(5 * opts.settleMs, 5000);
      const recheck = new Map<string, NodeJS.Timeout>();
      const done = new Promise<string>((resolve) => {
        settled = (traceId) => {
          clearTimeout(recheck.get(traceId));
          const c = completeness(receiver.trace(traceId));
          if (c === 'root') return resolve(traceId);
          if (c === 'remote-root') {
            // Give a late exporter (e.g. the shim's batch processor) a chance to deliver the parent.
            const quiet = Date.now() - (lastAt.get(traceId) ?? 0);
            recheck.set(
              traceId,
              setTimeout(
                () => {
                  if (completeness(receiver.trace(traceId)) !== 'partial' && !timers.has(traceId)) resolve(traceId);
                },
                Math.max(0, longSettle - quiet),
              ),
            );
          }
        };
      });
      const how = await Promise.race([done, timedOut, stopped]);
      for (const t of recheck.values()) clearTimeout(t);
      if (how === 'timeout') {
        const best = receiver.traces().sort((a, b) => b.spanCount - a.spanCount)[0];
        if (best) {
          stdout.write(waterfall(receiver.trace(best.traceId)));
          errLine(`no complete trace within ${opts.waitMs / 1000} s; printed the largest incomplete one`);
        } else errLine(`no trace arrived within ${opts.waitMs / 1000} s`);
        code = 1;
      } else if (how === 'stopped') code = 130;
      else stdout.write(waterfall(receiver.trace(how)));
    } else {
      const printed = new Map<string, number>();
      settled = (traceId) => {
        const spans = receiver.trace(traceId);
        if (spans.length === 0 || spans.length === printed.get(traceId)) return;
        const update = printed.has(traceId);
        printed.set(traceId, spans.length);
        stdout.write(`\n${update ? '(updated) ' : ''}${waterfall(spans)}`);
      };
      await stopped;
    }
  } finally {
    clearTimeout(deadline);
    for (const t of timers.values()) clearTimeout(t);
    offSpans();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.signal?.removeEventListener('abort', onSignal);
    await receiver.close();
  }
  return code;
}

function describe(receiver: OtlpReceiver): string {
  const traces = receiver.traces();
  if (traces.length === 0) return 'no spans received';
  return `received ${traces.length} other trace(s): ${traces
    .slice(0, 5)
    .map((t) => `${t.traceId} (${t.rootName}, ${t.spanCount} spans)`)
    .join(', ')}${traces.length > 5 ? ', …' : ''}`;
}
