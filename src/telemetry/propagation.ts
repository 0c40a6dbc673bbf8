// Context propagation on the RPC path (no OpenTelemetry import): which
// propagators OTEL_PROPAGATORS turns on, the incoming context of a container
// (ttrpc metadata, the shim's environment) and the environment carrier the
// module gets. Propagation works whether or not spans are exported: the SDK
// being disabled (OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER=none) changes nothing here.
import {
  formatTraceparent,
  isValidSpanContext,
  parseTraceContext,
  parseTraceContextEnv,
  type SpanContextLike,
} from './traceparent.js';

export interface Propagators {
  /** W3C Trace Context: traceparent/tracestate in metadata, TRACEPARENT/TRACESTATE/TRACECONTEXT in the environment. */
  traceContext: boolean;
  /** W3C Baggage: baggage in metadata, BAGGAGE in the environment. */
  baggage: boolean;
}

/** The spec's default: `tracecontext,baggage`. */
export const DEFAULT_PROPAGATORS: Propagators = Object.freeze({ traceContext: true, baggage: true });

const MAX_BAGGAGE_LENGTH = 8192;

/** OTEL_PROPAGATORS: `tracecontext`, `baggage`, `none`; anything else is warned about and ignored. */
export function readPropagators(env: Record<string, string | undefined>, warnings: string[] = []): Propagators {
  const raw = env.OTEL_PROPAGATORS?.trim();
  if (!raw) return { ...DEFAULT_PROPAGATORS };
  const names = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const unsupported = names.filter((n) => n !== 'tracecontext' && n !== 'baggage' && n !== 'none');
  if (unsupported.length > 0) {
    warnings.push(
      `OTEL_PROPAGATORS: ${unsupported.join(', ')} not supported; ignored (supported: tracecontext, baggage, none)`,
    );
  }
  if (names.includes('none')) {
    if (names.length > 1)
      warnings.push(`OTEL_PROPAGATORS=${raw}: "none" turns propagation off; the others listed are ignored`);
    return { traceContext: false, baggage: false };
  }
  return { traceContext: names.includes('tracecontext'), baggage: names.includes('baggage') };
}

/** What a container's spans and its module inherit from outside. */
export interface IncomingContext {
  parent?: SpanContextLike;
  baggage?: string;
}

function cleanBaggage(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v.length <= MAX_BAGGAGE_LENGTH && !/[\r\n]/.test(v) ? v : undefined;
}

/**
 * The shim's environment as a carrier (the spec's env carriers): TRACEPARENT /
 * TRACESTATE first, else runwasi's TRACECONTEXT (a plain traceparent or its JSON
 * map, tracestate included); BAGGAGE.
 */
export function extractFromEnv(env: Record<string, string | undefined>, p: Propagators): IncomingContext {
  const out = extractFromMetadata((key) => env[key.toUpperCase()], p);
  if (p.traceContext && !out.parent) {
    const parent = parseTraceContextEnv(env.TRACECONTEXT);
    if (parent) out.parent = parent;
  }
  return out;
}

/** ttrpc request metadata (containerd 2.x sends traceparent when its own tracing is on). */
export function extractFromMetadata(get: (key: string) => string | undefined, p: Propagators): IncomingContext {
  const out: IncomingContext = {};
  if (p.traceContext) {
    const parent = parseTraceContext(get('traceparent'), get('tracestate'));
    if (parent) out.parent = parent;
  }
  if (p.baggage) {
    const baggage = cleanBaggage(get('baggage'));
    if (baggage) out.baggage = baggage;
  }
  return out;
}

/**
 * The variables the module's environment gets: TRACEPARENT and TRACECONTEXT (the
 * same plain header value, for the spec's carrier and for runwasi's), TRACESTATE
 * when there is one, BAGGAGE. Empty when propagation is off or there is no context.
 */
export function injectEnv(
  ctx: SpanContextLike | undefined,
  baggage: string | undefined,
  p: Propagators,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (p.traceContext && isValidSpanContext(ctx)) {
    const traceparent = formatTraceparent(ctx);
    out.TRACEPARENT = traceparent;
    out.TRACECONTEXT = traceparent;
    if (ctx.traceState) out.TRACESTATE = ctx.traceState;
  }
  if (p.baggage && baggage) out.BAGGAGE = baggage;
  return out;
}

/** How a forked Wasm child gets its context: the module's variables, and the parent of the child's own spans. */
export interface ChildTraceContext {
  /** Added to the module's WASI environment (TRACEPARENT, TRACECONTEXT, TRACESTATE, BAGGAGE). */
  env: Record<string, string>;
  /** Set when the daemon records spans: the child records its spans under this context. */
  recordUnder?: { traceparent: string; tracestate?: string };
}
