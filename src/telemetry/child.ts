// The Wasm child's side: record spans cheaply (no OpenTelemetry import) and hand
// them to the daemon over IPC, which submits them to its export worker.

import { readTelemetryConfig, type TelemetryConfig } from './config.js';
import { SpanRecorder, type SpanRecord } from './recorder.js';
import { parseTraceContextEnv, type SpanContextLike } from './traceparent.js';

export interface ChildRecorder {
  recorder: SpanRecorder;
  /** Finished records since the last drain (the caller relays them to the daemon). */
  drain(): SpanRecord[];
  /** The parent context from TRACECONTEXT, when valid. */
  parent?: SpanContextLike;
  config: TelemetryConfig;
}

export interface ChildRecorderOptions {
  /** Called whenever a span finishes (e.g. to relay it immediately); drain() still returns it unless it is drained here. */
  onSpan?: (rec: SpanRecord) => void;
  /** Records kept until drained (oldest dropped beyond this). Default 1024. */
  maxBuffered?: number;
  pid?: number;
}

export function createChildRecorder(env: NodeJS.ProcessEnv, opts: ChildRecorderOptions = {}): ChildRecorder {
  const config = readTelemetryConfig(env);
  const parsed = config.propagateTraceContext ? parseTraceContextEnv(env.TRACECONTEXT) : undefined;
  const max = Math.max(1, opts.maxBuffered ?? 1024);
  let buf: SpanRecord[] = [];
  const recorder = new SpanRecorder(
    (rec) => {
      if (buf.length >= max) buf.shift();
      buf.push(rec);
      opts.onSpan?.(rec);
    },
    { enabled: config.enabled, sampler: config.sampler, process: 'child', pid: opts.pid ?? process.pid },
  );
  const out: ChildRecorder = {
    recorder,
    config,
    drain() {
      const r = buf;
      buf = [];
      return r;
    },
  };
  if (parsed) out.parent = parsed;
  return out;
}
