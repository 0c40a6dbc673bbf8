// Hand-built OTLP export requests for the receiver and viewer tests: a
// synthetic wasmts trace with spans from the shim and from its wasm child.
import { create, toBinary, toJson, type JsonValue } from '@bufbuild/protobuf';
import {
  ExportTraceServiceRequestSchema,
  type ExportTraceServiceRequest,
} from '../../src/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import type { AnyValue, KeyValue } from '../../src/gen/opentelemetry/proto/common/v1/common_pb.js';
import type { ReceivedSpan } from '../../src/otlp/receiver.js';

export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const T0 = 1_700_000_000_000_000_000n; // ns
export const MS = 1_000_000n;

export function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

type Plain = string | number | boolean | bigint | Uint8Array | Plain[] | { [k: string]: Plain };

export function anyValue(v: Plain): AnyValue {
  const mk = (value: AnyValue['value']): AnyValue => ({ $typeName: 'opentelemetry.proto.common.v1.AnyValue', value });
  if (typeof v === 'string') return mk({ case: 'stringValue', value: v });
  if (typeof v === 'boolean') return mk({ case: 'boolValue', value: v });
  if (typeof v === 'bigint') return mk({ case: 'intValue', value: v });
  if (typeof v === 'number')
    return Number.isInteger(v) ? mk({ case: 'intValue', value: BigInt(v) }) : mk({ case: 'doubleValue', value: v });
  if (v instanceof Uint8Array) return mk({ case: 'bytesValue', value: v });
  if (Array.isArray(v))
    return mk({
      case: 'arrayValue',
      value: { $typeName: 'opentelemetry.proto.common.v1.ArrayValue', values: v.map(anyValue) },
    });
  return mk({
    case: 'kvlistValue',
    value: { $typeName: 'opentelemetry.proto.common.v1.KeyValueList', values: attrs(v) },
  });
}

export function attrs(o: Record<string, Plain>): KeyValue[] {
  return Object.entries(o).map(([key, value]) => ({
    $typeName: 'opentelemetry.proto.common.v1.KeyValue',
    key,
    value: anyValue(value),
  }));
}

export interface SpanSpec {
  spanId: string;
  parent?: string;
  name: string;
  startMs: number;
  endMs: number;
  kind?: number;
  attributes?: Record<string, Plain>;
  status?: { code: number; message?: string };
  events?: { name: string; atMs: number; attributes?: Record<string, Plain> }[];
  links?: { traceId: string; spanId: string; attributes?: Record<string, Plain> }[];
  traceId?: string;
}

export interface ResourceSpec {
  resource: Record<string, Plain>;
  scope?: { name: string; version?: string };
  spans: SpanSpec[];
}

export function buildRequest(groups: ResourceSpec[]): ExportTraceServiceRequest {
  const ns = (ms: number): bigint => T0 + BigInt(Math.round(ms * 1000)) * 1000n;
  return create(ExportTraceServiceRequestSchema, {
    resourceSpans: groups.map((g) => ({
      resource: { attributes: attrs(g.resource) },
      scopeSpans: [
        {
          scope: { name: g.scope?.name ?? 'wasmts', version: g.scope?.version ?? '0.1.0' },
          spans: g.spans.map((s) => ({
            traceId: hexBytes(s.traceId ?? TRACE_ID),
            spanId: hexBytes(s.spanId),
            parentSpanId: s.parent ? hexBytes(s.parent) : new Uint8Array(),
            name: s.name,
            kind: s.kind ?? 1,
            flags: 1,
            startTimeUnixNano: ns(s.startMs),
            endTimeUnixNano: ns(s.endMs),
            attributes: attrs(s.attributes ?? {}),
            status: s.status ? { code: s.status.code, message: s.status.message ?? '' } : undefined,
            events: (s.events ?? []).map((e) => ({
              name: e.name,
              timeUnixNano: ns(e.atMs),
              attributes: attrs(e.attributes ?? {}),
            })),
            links: (s.links ?? []).map((l) => ({
              traceId: hexBytes(l.traceId),
              spanId: hexBytes(l.spanId),
              attributes: attrs(l.attributes ?? {}),
            })),
          })),
        },
      ],
    })),
  });
}

export const SHIM_RESOURCE = { 'service.name': 'wasmts', 'process.pid': 4242, 'wasmts.process': 'shim' };
export const CHILD_RESOURCE = { 'service.name': 'wasmts', 'process.pid': 4243, 'wasmts.process': 'child' };

export const IDS = {
  main: 'a000000000000001',
  create: 'a000000000000002',
  start: 'a000000000000003',
  wait: 'a000000000000004',
  compile: 'b000000000000001',
  instantiate: 'b000000000000002',
  run: 'b000000000000003',
};

/** The synthetic trace: 4 shim spans, 3 child spans (7 in all), 100 ms long. */
export function syntheticTrace(traceId = TRACE_ID): ResourceSpec[] {
  return [
    {
      resource: SHIM_RESOURCE,
      scope: { name: 'wasmts-shim', version: '0.1.0' },
      spans: [
        { traceId, spanId: IDS.main, name: 'shim.main', startMs: 0, endMs: 100, kind: 2 },
        {
          traceId,
          spanId: IDS.create,
          parent: IDS.main,
          name: 'task.create',
          startMs: 5,
          endMs: 20,
          kind: 2,
          attributes: { 'containerd.task.id': 'hello', 'rpc.method': 'Create' },
        },
        {
          traceId,
          spanId: IDS.start,
          parent: IDS.main,
          name: 'task.start',
          startMs: 22,
          endMs: 30,
          kind: 2,
          attributes: { 'rpc.method': 'Start' },
        },
        {
          traceId,
          spanId: IDS.wait,
          parent: IDS.main,
          name: 'task.wait',
          startMs: 31,
          endMs: 95,
          kind: 2,
          attributes: { 'rpc.method': 'Wait' },
        },
      ],
    },
    {
      resource: CHILD_RESOURCE,
      scope: { name: 'wasmts-child', version: '0.1.0' },
      spans: [
        {
          traceId,
          spanId: IDS.compile,
          parent: IDS.start,
          name: 'wasm.compile',
          startMs: 24,
          endMs: 35,
          attributes: { 'wasm.module.size': 12345 },
        },
        { traceId, spanId: IDS.instantiate, parent: IDS.start, name: 'wasm.instantiate', startMs: 35, endMs: 40 },
        {
          traceId,
          spanId: IDS.run,
          parent: IDS.start,
          name: 'wasm.run',
          startMs: 40,
          endMs: 90,
          attributes: {
            'wasi.exit_code': 3,
            'process.exit.code': 3,
            'error.type': '3',
            'wasm.module': 'hello.wasm',
            'wasi.args': ['hello', '--n', '3'],
          },
          status: { code: 2, message: 'exit code 3' },
          events: [{ name: 'proc_exit', atMs: 89, attributes: { code: 3 } }],
          links: [
            { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', attributes: { why: 'test' } },
          ],
        },
      ],
    },
  ];
}

export function encode(req: ExportTraceServiceRequest): Uint8Array {
  return toBinary(ExportTraceServiceRequestSchema, req);
}

/** OTLP/JSON: like protobuf's canonical JSON, but trace and span ids in hex. */
export function toOtlpJson(req: ExportTraceServiceRequest): string {
  const json = toJson(ExportTraceServiceRequestSchema, req, { enumAsInteger: true }) as {
    resourceSpans?: { scopeSpans?: { spans?: Record<string, JsonValue>[] }[] }[];
  };
  const hex = (o: Record<string, JsonValue>, keys: string[]): void => {
    for (const k of keys) if (typeof o[k] === 'string') o[k] = Buffer.from(o[k], 'base64').toString('hex');
  };
  for (const rs of json.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? []) {
        hex(s, ['traceId', 'spanId', 'parentSpanId']);
        for (const l of (s.links as Record<string, JsonValue>[] | undefined) ?? []) hex(l, ['traceId', 'spanId']);
      }
  return JSON.stringify(json);
}

export async function postTraces(
  baseUrl: string,
  body: Uint8Array | string,
  headers: Record<string, string> = { 'content-type': 'application/x-protobuf' },
): Promise<{ status: number; type: string; body: Buffer }> {
  const res = await fetch(`${baseUrl}/v1/traces`, { method: 'POST', headers, body });
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: Buffer.from(await res.arrayBuffer()),
  };
}

/** ReceivedSpans for the viewer's unit tests, without going over the wire. */
export function receivedSpans(groups: ResourceSpec[]): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const ns = (ms: number): bigint => T0 + BigInt(Math.round(ms * 1000)) * 1000n;
  for (const g of groups)
    for (const s of g.spans)
      out.push({
        traceId: s.traceId ?? TRACE_ID,
        spanId: s.spanId,
        parentSpanId: s.parent ?? '',
        traceState: '',
        name: s.name,
        kind: s.kind ?? 1,
        startTimeUnixNano: ns(s.startMs),
        endTimeUnixNano: ns(s.endMs),
        attributes: { ...(s.attributes ?? {}) },
        status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
        events: (s.events ?? []).map((e) => ({
          name: e.name,
          timeUnixNano: ns(e.atMs),
          attributes: { ...(e.attributes ?? {}) },
        })),
        links: (s.links ?? []).map((l) => ({
          traceId: l.traceId,
          spanId: l.spanId,
          attributes: { ...(l.attributes ?? {}) },
        })),
        resource: { ...g.resource },
        scope: { name: g.scope?.name ?? 'wasmts', version: g.scope?.version ?? '0.1.0' },
        protocol: 'http',
      });
  return out;
}
