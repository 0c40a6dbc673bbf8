// Conversions between the generated OTLP messages and the plain ReceivedSpan
// records the receiver keeps, plus the OTLP/JSON id quirk (hex, not base64).
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import type { AnyValue, KeyValue } from '../gen/opentelemetry/proto/common/v1/common_pb.js';
import {
  ExportTraceServiceRequestSchema,
  type ExportTraceServiceRequest,
} from '../gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';

/** One span as the receiver stores it: ids in lowercase hex, attributes as plain values. */
export interface ReceivedSpan {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  /** W3C tracestate of the span ('' when none). */
  traceState: string;
  name: string;
  /** OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** string | boolean | number | bigint (int64 beyond 2^53) | Uint8Array | unknown[] | object | null. */
  attributes: Record<string, unknown>;
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  events: { name: string; timeUnixNano: bigint; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  /** The resource's attributes (service.name, process.pid, ...). */
  resource: Record<string, unknown>;
  scope: { name: string; version: string };
  protocol: 'http' | 'grpc';
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Hex of an id, '' when it is empty or all zeroes (both mean "no id" in OTLP). */
function idHex(bytes: Uint8Array): string {
  return bytes.some((b) => b !== 0) ? toHex(bytes) : '';
}

function anyValueToJs(v: AnyValue | undefined): unknown {
  const val = v?.value;
  if (!val || val.case === undefined) return null;
  switch (val.case) {
    case 'stringValue':
    case 'boolValue':
    case 'doubleValue':
      return val.value;
    case 'intValue': {
      const n = Number(val.value);
      return Number.isSafeInteger(n) ? n : val.value;
    }
    case 'bytesValue':
      return new Uint8Array(val.value); // a copy, not a view into the request buffer
    case 'arrayValue':
      return val.value.values.map(anyValueToJs);
    case 'kvlistValue':
      return keyValuesToRecord(val.value.values);
  }
  return null;
}

function keyValuesToRecord(kvs: KeyValue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of kvs) out[kv.key] = anyValueToJs(kv.value);
  return out;
}

/** Flattens an export request into ReceivedSpans. */
export function requestToSpans(req: ExportTraceServiceRequest, protocol: 'http' | 'grpc'): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans) {
    const resource = keyValuesToRecord(rs.resource?.attributes ?? []);
    for (const ss of rs.scopeSpans) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans) {
        out.push({
          traceId: toHex(s.traceId),
          spanId: toHex(s.spanId),
          parentSpanId: idHex(s.parentSpanId),
          traceState: s.traceState,
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: s.startTimeUnixNano,
          endTimeUnixNano: s.endTimeUnixNano,
          attributes: keyValuesToRecord(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          events: s.events.map((e) => ({
            name: e.name,
            timeUnixNano: e.timeUnixNano,
            attributes: keyValuesToRecord(e.attributes),
          })),
          links: s.links.map((l) => ({
            traceId: toHex(l.traceId),
            spanId: toHex(l.spanId),
            attributes: keyValuesToRecord(l.attributes),
          })),
          resource,
          scope,
          protocol,
        });
      }
    }
  }
  return out;
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** OTLP/JSON writes ids as hex; protobuf's canonical JSON for bytes is base64. */
function hexIdToBase64(obj: Record<string, unknown>, keys: string[]): void {
  for (const k of keys) {
    const v = obj[k];
    if (typeof v === 'string' && HEX.test(v)) obj[k] = Buffer.from(v, 'hex').toString('base64');
  }
}

function arr(obj: Record<string, unknown>, camel: string, snake: string): Record<string, unknown>[] {
  const v = obj[camel] ?? obj[snake];
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => !!x && typeof x === 'object') : [];
}

/**
 * Parses an OTLP/JSON ExportTraceServiceRequest (hex ids, camelCase or
 * proto field names, enums as numbers, unknown fields ignored).
 * Throws on anything that is not such a request.
 */
export function parseOtlpJson(text: string): ExportTraceServiceRequest {
  const json: unknown = JSON.parse(text);
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('OTLP/JSON body must be an object');
  const root = json as Record<string, unknown>;
  for (const rs of arr(root, 'resourceSpans', 'resource_spans')) {
    for (const ss of arr(rs, 'scopeSpans', 'scope_spans')) {
      for (const span of arr(ss, 'spans', 'spans')) {
        hexIdToBase64(span, ['traceId', 'trace_id', 'spanId', 'span_id', 'parentSpanId', 'parent_span_id']);
        for (const link of arr(span, 'links', 'links'))
          hexIdToBase64(link, ['traceId', 'trace_id', 'spanId', 'span_id']);
      }
    }
  }
  return fromJson(ExportTraceServiceRequestSchema, root as JsonValue, { ignoreUnknownFields: true });
}
