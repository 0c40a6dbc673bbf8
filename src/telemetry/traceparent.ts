// W3C Trace Context `traceparent` parsing and formatting (no OpenTelemetry import).
// https://www.w3.org/TR/trace-context/#traceparent-header

export interface SpanContextLike {
  /** 32 lowercase hex characters, not all zeros. */
  traceId: string;
  /** 16 lowercase hex characters, not all zeros. */
  spanId: string;
  /** W3C trace flags; bit 0 = sampled. */
  traceFlags: number;
  /** True when the context came from another process (header / TRACECONTEXT). */
  isRemote?: boolean;
  /** W3C `tracestate` header value, carried unchanged to child spans and the module. */
  traceState?: string;
}

export const TRACE_FLAG_SAMPLED = 0x01;

const TRACE_ID_RE = /^[0-9a-f]{32}$/;
const SPAN_ID_RE = /^[0-9a-f]{16}$/;
const INVALID_TRACE_ID = '0'.repeat(32);
const INVALID_SPAN_ID = '0'.repeat(16);

export function isValidTraceId(id: string): boolean {
  return TRACE_ID_RE.test(id) && id !== INVALID_TRACE_ID;
}

export function isValidSpanId(id: string): boolean {
  return SPAN_ID_RE.test(id) && id !== INVALID_SPAN_ID;
}

export function isValidSpanContext(ctx: SpanContextLike | undefined | null): ctx is SpanContextLike {
  return (
    !!ctx &&
    typeof ctx.traceId === 'string' &&
    typeof ctx.spanId === 'string' &&
    isValidTraceId(ctx.traceId) &&
    isValidSpanId(ctx.spanId) &&
    Number.isInteger(ctx.traceFlags) &&
    ctx.traceFlags >= 0 &&
    ctx.traceFlags <= 0xff
  );
}

/**
 * Parse a `traceparent` header value. Only version 00 is accepted (a higher
 * version is parsed leniently as the spec asks: its first four fields, provided
 * they are well-formed; version ff is invalid). Returns undefined when invalid.
 * The result is marked isRemote.
 */
export function parseTraceparent(value: string | undefined | null): SpanContextLike | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  const parts = v.split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, spanId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff') return undefined;
  // Version 00 has exactly four fields; a future version may append more after a '-'.
  if (version === '00' && parts.length !== 4) return undefined;
  if (!isValidTraceId(traceId) || !isValidSpanId(spanId)) return undefined;
  if (!/^[0-9a-f]{2}$/.test(flags)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true };
}

/** Format a span context as a version-00 traceparent ('' when the context is invalid). */
export function formatTraceparent(ctx: SpanContextLike | undefined | null): string {
  if (!isValidSpanContext(ctx)) return '';
  const flags = (ctx.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${ctx.traceId}-${ctx.spanId}-${flags}`;
}

/** A `tracestate` value kept as is when well-formed (at most 32 members, 512 characters), else dropped, as the spec asks. */
export function parseTracestate(value: string | undefined | null): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (v === '' || v.length > 512) return undefined;
  const members = v
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
  if (members.length === 0 || members.length > 32) return undefined;
  const member = /^[a-z0-9][_0-9a-z\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
  return members.every((m) => member.test(m)) ? members.join(',') : undefined;
}

/** A traceparent with its tracestate (when one came along and is well-formed). */
export function parseTraceContext(
  traceparent: string | undefined | null,
  tracestate?: string | null,
): SpanContextLike | undefined {
  const ctx = parseTraceparent(traceparent);
  if (!ctx) return undefined;
  const state = parseTracestate(tracestate);
  return state ? { ...ctx, traceState: state } : ctx;
}

/**
 * Parse the TRACECONTEXT environment variable: either a plain traceparent value,
 * or a JSON object carrying one (runwasi's form: `{"traceparent":"00-…","tracestate":"…"}`).
 */
export function parseTraceContextEnv(value: string | undefined | null): SpanContextLike | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (v.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(v);
    } catch {
      return undefined;
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
    let traceparent: string | undefined;
    let tracestate: string | undefined;
    for (const [k, val] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof val !== 'string') continue;
      if (k.toLowerCase() === 'traceparent') traceparent = val;
      else if (k.toLowerCase() === 'tracestate') tracestate = val;
    }
    return parseTraceContext(traceparent, tracestate);
  }
  return parseTraceparent(v);
}
