// Trace layout shared by the terminal waterfall and the web viewer: spans in
// display order (depth-first, children by start time), and which process
// (the shim or its wasm child) each span came from.
import type { ReceivedSpan } from '../otlp/convert.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_PROCESS_EXIT_CODE,
  ATTR_PROCESS_PID,
  ATTR_WASMTS_PROCESS,
} from '../telemetry/semconv.js';

export interface Row {
  span: ReceivedSpan;
  /** 0 for top-level spans. */
  depth: number;
  /** The span names a parent that is not in the trace; it is shown at the top level. */
  orphan: boolean;
}

export type ProcessKind = 'shim' | 'child' | 'other';

export interface ProcessInfo {
  kind: ProcessKind;
  /** 'shim', 'wasm child', 'pid 1234' or '' when nothing tells. */
  label: string;
}

function cmpStart(a: ReceivedSpan, b: ReceivedSpan): number {
  if (a.startTimeUnixNano !== b.startTimeUnixNano) return a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1;
  if (a.endTimeUnixNano !== b.endTimeUnixNano) return a.endTimeUnixNano > b.endTimeUnixNano ? -1 : 1; // longer first
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Orders the spans of one trace for display. Duplicate span ids keep their first copy. */
export function layoutTrace(spans: ReceivedSpan[]): Row[] {
  const byId = new Map<string, ReceivedSpan>();
  for (const s of spans) if (!byId.has(s.spanId)) byId.set(s.spanId, s);
  const unique = [...byId.values()];
  const children = new Map<string, ReceivedSpan[]>();
  const top: { span: ReceivedSpan; orphan: boolean }[] = [];
  for (const s of unique) {
    if (s.parentSpanId === '' || s.parentSpanId === s.spanId) top.push({ span: s, orphan: false });
    else if (!byId.has(s.parentSpanId)) top.push({ span: s, orphan: true });
    else {
      let list = children.get(s.parentSpanId);
      if (!list) children.set(s.parentSpanId, (list = []));
      list.push(s);
    }
  }
  top.sort((a, b) => cmpStart(a.span, b.span));
  const rows: Row[] = [];
  const seen = new Set<string>();
  const visit = (span: ReceivedSpan, depth: number, orphan: boolean): void => {
    if (seen.has(span.spanId)) return;
    seen.add(span.spanId);
    rows.push({ span, depth, orphan });
    for (const c of (children.get(span.spanId) ?? []).sort(cmpStart)) visit(c, depth + 1, false);
  };
  for (const t of top) visit(t.span, 0, t.orphan);
  // Spans caught in a parent cycle are reachable from no top-level span: show them as orphans.
  for (const s of unique.sort(cmpStart)) if (!seen.has(s.spanId)) visit(s, 0, true);
  return rows;
}

/**
 * Which process produced a span: the `wasmts.process` attribute ('shim' or
 * 'child') on the span or its resource; otherwise the resource's process.pid.
 */
export function processOf(span: ReceivedSpan): ProcessInfo {
  const p = span.attributes[ATTR_WASMTS_PROCESS] ?? span.resource[ATTR_WASMTS_PROCESS];
  if (p === 'shim') return { kind: 'shim', label: 'shim' };
  if (p === 'child') return { kind: 'child', label: 'wasm child' };
  const pid = span.resource[ATTR_PROCESS_PID];
  if (typeof pid === 'number' || typeof pid === 'bigint' || typeof pid === 'string')
    return { kind: 'other', label: `pid ${pid}` };
  return { kind: 'other', label: typeof p === 'string' ? p : '' };
}

/** What an operator alerts on: the span's error status, the exit code and error.type it carries. */
export interface Outcome {
  error: boolean;
  exitCode?: number;
  errorType?: string;
  /** "✗ exit 3 · 3" style summary ('' for a span that neither failed nor carries an exit code). */
  text: string;
}

export function outcomeOf(span: ReceivedSpan): Outcome {
  const error = span.status.code === 2;
  const code = span.attributes[ATTR_PROCESS_EXIT_CODE];
  const type = span.attributes[ATTR_ERROR_TYPE];
  const exitCode = typeof code === 'number' ? code : typeof code === 'bigint' ? Number(code) : undefined;
  const errorType = typeof type === 'string' && type !== '' ? type : undefined;
  const parts: string[] = [];
  if (exitCode !== undefined) parts.push(`exit ${exitCode}`);
  if (error) {
    if (errorType && errorType !== String(exitCode)) parts.push(errorType);
    const msg = span.status.message;
    if (msg && !parts.includes(msg)) parts.push(msg);
  }
  const text = error ? `✗ ${parts.join(' · ') || 'error'}` : parts.join(' · ');
  return { error, ...(exitCode !== undefined ? { exitCode } : {}), ...(errorType ? { errorType } : {}), text };
}

export function serviceOf(span: ReceivedSpan): string {
  const s = span.resource['service.name'];
  return typeof s === 'string' ? s : '';
}

/** "850ns", "312µs", "12.3ms", "1.25s", "2m05s". */
export function formatDuration(ns: bigint | number): string {
  const n = typeof ns === 'bigint' ? Number(ns) : ns;
  if (n < 0) return `-${formatDuration(-n)}`;
  if (n < 1e3) return `${Math.round(n)}ns`;
  if (n < 1e6) return `${trim(n / 1e3)}µs`;
  if (n < 1e9) return `${trim(n / 1e6)}ms`;
  if (n < 60e9) return `${trim(n / 1e9)}s`;
  const s = Math.round(n / 1e9);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function trim(v: number): string {
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
export const STATUS_CODES = ['unset', 'ok', 'error'];
