// Validation of SpanRecords that cross a process or thread boundary (the Wasm
// child's IPC messages, the export worker's input): a record is rebuilt from
// checked fields, never cast, so a confused or hostile child cannot put
// anything else into the daemon's pipeline.
import {
  ATTRIBUTE_COUNT_LIMIT,
  EVENT_COUNT_LIMIT,
  LINK_COUNT_LIMIT,
  SPAN_KINDS,
  type AttributeValue,
  type Attributes,
  type HrTime,
  type SpanKindName,
  type SpanRecord,
  type SpanStatusCodeValue,
} from './recorder.js';
import { isValidSpanId, isValidTraceId, parseTracestate } from './traceparent.js';

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const MAX_NAME = 256;
const MAX_STRING = 8192;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An array's elements as unknowns (Array.isArray alone narrows to any[]); [] for anything else. */
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function hrTime(v: unknown): HrTime | undefined {
  const pair = list(v);
  if (pair.length !== 2) return undefined;
  const [s, n] = pair;
  if (typeof s !== 'number' || typeof n !== 'number') return undefined;
  return Number.isSafeInteger(s) && s >= 0 && Number.isInteger(n) && n >= 0 && n < 1e9 ? [s, n] : undefined;
}

function value(v: unknown): AttributeValue | undefined {
  if (typeof v === 'string') return v.length <= MAX_STRING ? v : v.slice(0, MAX_STRING);
  if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  if (Array.isArray(v) && v.length <= ATTRIBUTE_COUNT_LIMIT) {
    if (v.every((x) => typeof x === 'string')) return v;
    if (v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
    if (v.every((x) => typeof x === 'boolean')) return v;
  }
  return undefined;
}

function attributes(v: unknown): Attributes | undefined {
  if (v === undefined) return {};
  if (!isObj(v)) return undefined;
  const out: Attributes = {};
  let n = 0;
  for (const [k, raw] of Object.entries(v)) {
    if (++n > ATTRIBUTE_COUNT_LIMIT) break;
    const val = value(raw);
    if (val !== undefined && k !== '' && k.length <= MAX_NAME) out[k] = val;
  }
  return out;
}

const count = (v: unknown): number | undefined =>
  Number.isSafeInteger(v) && (v as number) > 0 ? (v as number) : undefined;

/** A SpanRecord rebuilt from `raw` when every required field checks out; undefined otherwise. */
export function parseSpanRecord(raw: unknown): SpanRecord | undefined {
  if (!isObj(raw)) return undefined;
  const { traceId, spanId, parentSpanId, name, kind, traceFlags, process: role, pid } = raw;
  if (typeof traceId !== 'string' || !isValidTraceId(traceId)) return undefined;
  if (typeof spanId !== 'string' || !isValidSpanId(spanId)) return undefined;
  if (parentSpanId !== undefined && (typeof parentSpanId !== 'string' || !HEX16.test(parentSpanId))) return undefined;
  if (typeof name !== 'string' || name === '' || name.length > MAX_NAME) return undefined;
  if (!Number.isInteger(traceFlags) || (traceFlags as number) < 0 || (traceFlags as number) > 0xff) return undefined;
  if (role !== 'shim' && role !== 'child') return undefined;
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined;
  const startTime = hrTime(raw.startTime);
  const endTime = hrTime(raw.endTime);
  const attrs = attributes(raw.attributes);
  if (!startTime || !endTime || !attrs) return undefined;
  const status = isObj(raw.status) ? raw.status : {};
  const code = status.code === 1 || status.code === 2 ? (status.code as SpanStatusCodeValue) : 0;
  const rec: SpanRecord = {
    traceId,
    spanId,
    traceFlags: traceFlags as number,
    name,
    kind: SPAN_KINDS.includes(kind as SpanKindName) ? (kind as SpanKindName) : 'internal',
    startTime,
    endTime,
    attributes: attrs,
    status:
      code === 2 && typeof status.message === 'string' && status.message !== ''
        ? { code, message: status.message.slice(0, MAX_STRING) }
        : { code },
    events: [],
    links: [],
    process: role,
    pid: pid as number,
  };
  if (parentSpanId !== undefined) rec.parentSpanId = parentSpanId;
  if (raw.parentIsRemote === true) rec.parentIsRemote = true;
  const traceState = typeof raw.traceState === 'string' ? parseTracestate(raw.traceState) : undefined;
  if (traceState) rec.traceState = traceState;
  for (const e of list(raw.events).slice(0, EVENT_COUNT_LIMIT)) {
    if (!isObj(e)) continue;
    const time = hrTime(e.time);
    const a = attributes(e.attributes);
    if (time && a && typeof e.name === 'string' && e.name !== '')
      rec.events.push({ name: e.name.slice(0, MAX_NAME), time, attributes: a });
  }
  for (const l of list(raw.links).slice(0, LINK_COUNT_LIMIT)) {
    const c = isObj(l) && isObj(l.context) ? l.context : undefined;
    const a = isObj(l) ? attributes(l.attributes) : undefined;
    if (
      !c ||
      !a ||
      typeof c.traceId !== 'string' ||
      !HEX32.test(c.traceId) ||
      typeof c.spanId !== 'string' ||
      !HEX16.test(c.spanId)
    )
      continue;
    rec.links.push({
      context: { traceId: c.traceId, spanId: c.spanId, traceFlags: Number(c.traceFlags) & 0xff },
      attributes: a,
    });
  }
  for (const k of ['droppedAttributesCount', 'droppedEventsCount', 'droppedLinksCount'] as const) {
    const n = count(raw[k]);
    if (n !== undefined) rec[k] = n;
  }
  return rec;
}
