// HTTP routes of the built-in trace viewer, served by the OTLP receiver's
// HTTP server next to POST /v1/traces:
//   GET /                  the page (viewer/page.ts)
//   GET /api/traces        JSON array of trace summaries (times in ms)
//   GET /api/traces/<id>   JSON array of the trace's spans in display order
import type http from 'node:http';
import type { ReceivedSpan } from '../otlp/convert.js';
import type { SpanStore, TraceSummary } from '../otlp/span-store.js';
import { VIEWER_HTML } from './page.js';
import { layoutTrace, outcomeOf, processOf, serviceOf, SPAN_KINDS, STATUS_CODES } from './tree.js';

/** Attribute values made JSON-safe: bigint → string, bytes → hex. */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = jsonSafe(x);
    return o;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

const ms = (ns: bigint): number => Number(ns) / 1e6;

function traceSummaryJson(t: TraceSummary): Record<string, unknown> {
  return {
    traceId: t.traceId,
    rootName: t.rootName,
    service: t.service,
    services: t.services,
    spanCount: t.spanCount,
    startMs: ms(t.startTimeUnixNano),
    endMs: ms(t.endTimeUnixNano),
    durationMs: t.durationMs,
    hasRoot: t.hasRoot,
    orphanCount: t.orphanCount,
    lastReceivedAt: t.lastReceivedAt,
    errorCount: t.errorCount,
    exitCode: t.exitCode ?? null,
  };
}

/** The spans of one trace in display order, with depth/orphan/process and times in ms. */
function traceSpansJson(spans: ReceivedSpan[]): Record<string, unknown>[] {
  if (spans.length === 0) return [];
  let t0 = spans[0].startTimeUnixNano;
  for (const s of spans) if (s.startTimeUnixNano < t0) t0 = s.startTimeUnixNano;
  return layoutTrace(spans).map(({ span: s, depth, orphan }) => {
    const proc = processOf(s);
    return {
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: s.parentSpanId,
      name: s.name,
      kind: s.kind,
      kindName: SPAN_KINDS[s.kind] ?? String(s.kind),
      depth,
      orphan,
      process: proc.kind,
      processLabel: proc.label,
      service: serviceOf(s),
      startTimeUnixNano: s.startTimeUnixNano.toString(),
      endTimeUnixNano: s.endTimeUnixNano.toString(),
      startMs: ms(s.startTimeUnixNano),
      offsetMs: ms(s.startTimeUnixNano - t0),
      durationMs: ms(s.endTimeUnixNano - s.startTimeUnixNano),
      status: {
        code: s.status.code,
        codeName: STATUS_CODES[s.status.code] ?? String(s.status.code),
        message: s.status.message,
      },
      outcome: outcomeOf(s),
      traceState: s.traceState,
      attributes: jsonSafe(s.attributes),
      resource: jsonSafe(s.resource),
      scope: s.scope,
      protocol: s.protocol,
      events: s.events.map((e) => ({
        name: e.name,
        timeUnixNano: e.timeUnixNano.toString(),
        offsetMs: ms(e.timeUnixNano - t0),
        attributes: jsonSafe(e.attributes),
      })),
      links: s.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: jsonSafe(l.attributes) })),
    };
  });
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** Answers the viewer's routes; returns false for any other path. */
export function handleViewerRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  store: Pick<SpanStore, 'traces' | 'trace'>,
): boolean {
  const path = url.pathname;
  const api = path === '/api/traces' || path.startsWith('/api/traces/');
  if (path !== '/' && path !== '/index.html' && !api) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'text/plain', `${req.method} not allowed\n`);
    return true;
  }
  if (!api) {
    send(res, 200, 'text/html; charset=utf-8', VIEWER_HTML);
    return true;
  }
  if (path === '/api/traces' || path === '/api/traces/') {
    send(res, 200, 'application/json', JSON.stringify(store.traces().map(traceSummaryJson)));
    return true;
  }
  const id = decodeURIComponent(path.slice('/api/traces/'.length)).toLowerCase();
  const spans = /^[0-9a-f]{32}$/.test(id) ? store.trace(id) : [];
  if (spans.length === 0) {
    send(res, 404, 'application/json', JSON.stringify({ error: `no trace ${id}` }));
    return true;
  }
  send(res, 200, 'application/json', JSON.stringify(traceSpansJson(spans)));
  return true;
}
