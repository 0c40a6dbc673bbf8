// A lightweight span recorder: loaded always, imports only node:crypto / node:perf_hooks.
//
// Spans get their ids and timestamps here, synchronously, before the OpenTelemetry
// SDK is (lazily, in a worker thread) loaded. A finished, sampled span becomes a
// plain JSON-serialisable SpanRecord handed to a sink: the daemon forwards records
// to its export worker, the Wasm child relays them to the daemon over IPC.

import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { SamplerConfig } from './config.js';
import { TRACE_FLAG_SAMPLED, formatTraceparent, isValidSpanContext, type SpanContextLike } from './traceparent.js';

export type { SpanContextLike } from './traceparent.js';

/** [seconds, nanoseconds] since the Unix epoch, as in @opentelemetry/api. */
export type HrTime = [number, number];
/** HrTime, milliseconds since the Unix epoch, or a Date. */
export type TimeInput = HrTime | number | Date;

export type AttributeValue = string | number | boolean | string[] | number[] | boolean[];
export type Attributes = Record<string, AttributeValue>;
/** What callers may pass: undefined / null values are skipped, bigints converted. */
export type AttributesInput = Record<string, AttributeValue | bigint | undefined | null>;

export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

export const SpanStatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;
export type SpanStatusCodeValue = 0 | 1 | 2;
export interface SpanStatus {
  code: SpanStatusCodeValue;
  message?: string;
}

export interface SpanEventRecord {
  name: string;
  time: HrTime;
  attributes: Attributes;
}

export interface SpanLinkRecord {
  context: SpanContextLike;
  attributes: Attributes;
}

export type ProcessRole = 'shim' | 'child';

/** A finished span, plain data (JSON / structured-clone safe). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** True when the parent came from another process (traceparent / TRACECONTEXT). */
  parentIsRemote?: boolean;
  traceFlags: number;
  /** W3C tracestate inherited from the parent. */
  traceState?: string;
  name: string;
  kind: SpanKindName;
  startTime: HrTime;
  endTime: HrTime;
  attributes: Attributes;
  status: SpanStatus;
  events: SpanEventRecord[];
  links: SpanLinkRecord[];
  droppedAttributesCount?: number;
  droppedEventsCount?: number;
  droppedLinksCount?: number;
  process: ProcessRole;
  pid: number;
}

export interface StartSpanOptions {
  /** Parent span context; invalid or missing = a root span. */
  parent?: SpanContextLike | null;
  startTime?: TimeInput;
  kind?: SpanKindName;
  attributes?: AttributesInput;
  links?: { context: SpanContextLike; attributes?: AttributesInput }[];
}

export interface ActiveSpan {
  /** Known immediately (ids generated at start). */
  readonly context: SpanContextLike;
  readonly name: string;
  readonly ended: boolean;
  /** False for unsampled spans and when tracing is disabled: then every mutator is a no-op. */
  isRecording(): boolean;
  /** W3C traceparent to propagate ('' when there is nothing to propagate). */
  traceparent(): string;
  setAttribute(key: string, value: AttributeValue | bigint | undefined | null): this;
  setAttributes(attributes: AttributesInput): this;
  addEvent(name: string, attributes?: AttributesInput, time?: TimeInput): this;
  /** Adds an `exception` event (exception.type/message/stacktrace) and sets status ERROR. */
  recordException(err: unknown): this;
  setStatus(code: SpanStatusCodeValue, message?: string): this;
  updateName(name: string): this;
  /** Idempotent. The finished record goes to the sink when sampled. */
  end(endTime?: TimeInput): void;
  /**
   * The record as it stands, ended now (undefined when not recording): handed to
   * another process that ends it should this one die first (the Wasm child's wasm.run).
   */
  snapshot(): SpanRecord | undefined;
}

export interface SpanRecorderOptions {
  enabled: boolean;
  sampler?: SamplerConfig;
  process?: ProcessRole;
  pid?: number;
  /** Called when the sink throws (the recorder never throws into its caller). */
  onError?: (err: unknown) => void;
}

export const ATTRIBUTE_COUNT_LIMIT = 128;
export const EVENT_COUNT_LIMIT = 128;
export const LINK_COUNT_LIMIT = 128;

// ---------------------------------------------------------------------------
// time

function millisToHrTime(ms: number): HrTime {
  const sec = Math.floor(ms / 1000);
  let nanos = Math.round((ms - sec * 1000) * 1e6);
  let s = sec;
  if (nanos >= 1e9) {
    s += 1;
    nanos -= 1e9;
  }
  return [s, nanos];
}

function addHrTimes(a: HrTime, b: HrTime): HrTime {
  let s = a[0] + b[0];
  let n = a[1] + b[1];
  if (n >= 1e9) {
    s += 1;
    n -= 1e9;
  }
  return [s, n];
}

// performance.timeOrigin + performance.now() is the high-resolution wall clock, but
// the monotonic clock drifts from the wall clock (NTP slews, suspend): by 5 ms a
// second on these VMs. A long-lived daemon and a fresh Wasm child put spans into
// one trace, so both stay within a couple of ms of the wall clock (Date.now() has
// 1 ms resolution): the origin is re-anchored whenever they disagree by more.
let timeOriginMs = performance.timeOrigin;
let timeOriginHr = millisToHrTime(timeOriginMs);
const MAX_DRIFT_MS = 2;

/** High-resolution wall clock now. */
export function hrNow(): HrTime {
  const rel = performance.now();
  const wall = Date.now();
  if (Math.abs(timeOriginMs + rel - wall) > MAX_DRIFT_MS) {
    timeOriginMs = wall - rel;
    timeOriginHr = millisToHrTime(timeOriginMs);
  }
  return addHrTimes(timeOriginHr, millisToHrTime(rel));
}

function isHrTime(v: unknown): v is HrTime {
  return (
    Array.isArray(v) &&
    v.length === 2 &&
    typeof v[0] === 'number' &&
    typeof v[1] === 'number' &&
    Number.isFinite(v[0]) &&
    Number.isFinite(v[1])
  );
}

export function toHrTime(t: TimeInput | undefined): HrTime {
  if (t === undefined) return hrNow();
  if (isHrTime(t)) return [t[0], t[1]];
  if (t instanceof Date) {
    const ms = t.getTime();
    return Number.isFinite(ms) ? millisToHrTime(ms) : hrNow();
  }
  if (typeof t === 'number' && Number.isFinite(t)) return millisToHrTime(t);
  return hrNow();
}

export function hrLess(a: HrTime, b: HrTime): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

// ---------------------------------------------------------------------------
// ids

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL_SIZE) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
    poolOffset += bytes;
    if (!/^0+$/.test(hex)) return hex;
  }
}

export function newTraceId(): string {
  return randomHex(16);
}

export function newSpanId(): string {
  return randomHex(8);
}

// ---------------------------------------------------------------------------
// sampling (the SDK is not loaded when spans start, so the decision is made here)

/**
 * TraceIdRatioBased: deterministic in the trace id, the same rule as the Go SDK
 * (the low 8 bytes, shifted right by one, compared with ratio * 2^63), so that
 * processes sharing a trace agree.
 */
export function traceIdRatioSampled(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (!(ratio > 0)) return false;
  const low = BigInt('0x' + traceId.slice(16, 32)) >> 1n;
  const bound = BigInt(Math.floor(ratio * 2 ** 63));
  return low < bound;
}

/** Sampling decision for a new span with the given trace id and (optional, valid) parent. */
export function shouldSample(
  sampler: SamplerConfig | undefined,
  traceId: string,
  parent: SpanContextLike | undefined,
): boolean {
  const s = sampler ?? { name: 'parentbased_always_on' as const, ratio: 1 };
  switch (s.name) {
    case 'always_on':
      return true;
    case 'always_off':
      return false;
    case 'traceidratio':
      return traceIdRatioSampled(traceId, s.ratio);
    case 'parentbased_always_on':
    case 'parentbased_always_off':
    case 'parentbased_traceidratio':
      if (parent) return (parent.traceFlags & TRACE_FLAG_SAMPLED) !== 0;
      if (s.name === 'parentbased_always_on') return true;
      if (s.name === 'parentbased_always_off') return false;
      return traceIdRatioSampled(traceId, s.ratio);
    default:
      return true;
  }
}

// ---------------------------------------------------------------------------
// attributes

function sanitizeValue(v: unknown): AttributeValue | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return v;
    case 'bigint':
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
    default:
      break;
  }
  if (Array.isArray(v)) {
    const items = v.filter((x) => x !== undefined && x !== null);
    if (items.length === 0) return [] as string[];
    const t = typeof items[0];
    if ((t === 'string' || t === 'number' || t === 'boolean') && items.every((x) => typeof x === t)) {
      return items.slice() as AttributeValue;
    }
    return undefined;
  }
  return undefined;
}

class AttributeBag {
  readonly values: Attributes = {};
  count = 0;
  dropped = 0;
  set(key: string, value: unknown): void {
    if (typeof key !== 'string' || key === '') return;
    const v = sanitizeValue(value);
    if (v === undefined) return;
    if (!(key in this.values)) {
      if (this.count >= ATTRIBUTE_COUNT_LIMIT) {
        this.dropped++;
        return;
      }
      this.count++;
    }
    this.values[key] = v;
  }
  setAll(attrs: AttributesInput | undefined): void {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) this.set(k, attrs[k]);
  }
}

function toAttributes(attrs: AttributesInput | undefined): Attributes {
  const bag = new AttributeBag();
  bag.setAll(attrs);
  return bag.values;
}

// ---------------------------------------------------------------------------
// spans

class NonRecordingSpan implements ActiveSpan {
  ended = false;
  constructor(
    readonly context: SpanContextLike,
    public name: string,
  ) {}
  isRecording(): boolean {
    return false;
  }
  traceparent(): string {
    return formatTraceparent(this.context);
  }
  setAttribute(): this {
    return this;
  }
  setAttributes(): this {
    return this;
  }
  addEvent(): this {
    return this;
  }
  recordException(): this {
    return this;
  }
  setStatus(): this {
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.ended = true;
  }
  snapshot(): undefined {
    return undefined;
  }
}

const INVALID_CONTEXT: SpanContextLike = Object.freeze({
  traceId: '0'.repeat(32),
  spanId: '0'.repeat(16),
  traceFlags: 0,
});

class RecordingSpan implements ActiveSpan {
  ended = false;
  private readonly attrs = new AttributeBag();
  private readonly events: SpanEventRecord[] = [];
  private droppedEvents = 0;
  private readonly links: SpanLinkRecord[] = [];
  private droppedLinks = 0;
  private status: SpanStatus = { code: SpanStatusCode.UNSET };
  private readonly startTime: HrTime;

  constructor(
    private readonly recorder: SpanRecorder,
    readonly context: SpanContextLike,
    public name: string,
    private readonly parent: SpanContextLike | undefined,
    private readonly kind: SpanKindName,
    opts: StartSpanOptions,
  ) {
    this.startTime = toHrTime(opts.startTime);
    this.attrs.setAll(opts.attributes);
    for (const l of opts.links ?? []) {
      if (!isValidSpanContext(l?.context)) continue;
      if (this.links.length >= LINK_COUNT_LIMIT) {
        this.droppedLinks++;
        continue;
      }
      this.links.push({
        context: {
          traceId: l.context.traceId,
          spanId: l.context.spanId,
          traceFlags: l.context.traceFlags,
          ...(l.context.isRemote ? { isRemote: true } : {}),
        },
        attributes: toAttributes(l.attributes),
      });
    }
  }

  isRecording(): boolean {
    return !this.ended;
  }
  traceparent(): string {
    return formatTraceparent(this.context);
  }
  setAttribute(key: string, value: AttributeValue | bigint | undefined | null): this {
    if (!this.ended) this.attrs.set(key, value);
    return this;
  }
  setAttributes(attributes: AttributesInput): this {
    if (!this.ended) this.attrs.setAll(attributes);
    return this;
  }
  addEvent(name: string, attributes?: AttributesInput, time?: TimeInput): this {
    if (this.ended) return this;
    if (this.events.length >= EVENT_COUNT_LIMIT) {
      this.droppedEvents++;
      return this;
    }
    this.events.push({ name: String(name), time: toHrTime(time), attributes: toAttributes(attributes) });
    return this;
  }
  recordException(err: unknown): this {
    if (this.ended) return this;
    const attributes: AttributesInput = {};
    let message: string;
    if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
      const e = err as Error;
      const type = e.name || e.constructor?.name || 'Error';
      message = String(e.message ?? '');
      attributes['exception.type'] = type;
      attributes['exception.message'] = message;
      if (typeof e.stack === 'string') attributes['exception.stacktrace'] = e.stack;
    } else {
      message = String(err);
      attributes['exception.message'] = message;
    }
    this.addEvent('exception', attributes);
    if (this.status.code !== SpanStatusCode.OK) this.setStatus(SpanStatusCode.ERROR, message);
    return this;
  }
  setStatus(code: SpanStatusCodeValue, message?: string): this {
    if (this.ended) return this;
    // Spec: OK is final; UNSET is ignored; a description only goes with ERROR.
    if (this.status.code === SpanStatusCode.OK) return this;
    if (code === SpanStatusCode.UNSET) return this;
    this.status =
      code === SpanStatusCode.ERROR && message !== undefined && message !== ''
        ? { code, message: String(message) }
        : { code };
    return this;
  }
  updateName(name: string): this {
    if (!this.ended) this.name = String(name);
    return this;
  }
  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    this.recorder._emit(this.record(endTime));
  }
  snapshot(): SpanRecord | undefined {
    if (this.ended) return undefined;
    const rec = this.record(undefined);
    return { ...rec, attributes: { ...rec.attributes }, events: [...rec.events], links: [...rec.links] };
  }
  private record(endTime: TimeInput | undefined): SpanRecord {
    let end = toHrTime(endTime);
    if (hrLess(end, this.startTime)) end = [this.startTime[0], this.startTime[1]];
    const rec: SpanRecord = {
      traceId: this.context.traceId,
      spanId: this.context.spanId,
      traceFlags: this.context.traceFlags,
      ...(this.context.traceState ? { traceState: this.context.traceState } : {}),
      name: this.name,
      kind: this.kind,
      startTime: this.startTime,
      endTime: end,
      attributes: this.attrs.values,
      status: this.status,
      events: this.events,
      links: this.links,
      process: this.recorder.process,
      pid: this.recorder.pid,
    };
    if (this.parent) {
      rec.parentSpanId = this.parent.spanId;
      if (this.parent.isRemote) rec.parentIsRemote = true;
    }
    if (this.attrs.dropped) rec.droppedAttributesCount = this.attrs.dropped;
    if (this.droppedEvents) rec.droppedEventsCount = this.droppedEvents;
    if (this.droppedLinks) rec.droppedLinksCount = this.droppedLinks;
    return rec;
  }
}

export const SPAN_KINDS: readonly SpanKindName[] = ['internal', 'server', 'client', 'producer', 'consumer'];

export class SpanRecorder {
  readonly enabled: boolean;
  readonly sampler: SamplerConfig;
  readonly process: ProcessRole;
  readonly pid: number;
  private readonly onError: ((err: unknown) => void) | undefined;

  constructor(
    private readonly sink: (s: SpanRecord) => void,
    opts: SpanRecorderOptions,
  ) {
    this.enabled = !!opts.enabled;
    this.sampler = opts.sampler ?? { name: 'parentbased_always_on', ratio: 1 };
    this.process = opts.process ?? 'shim';
    this.pid = opts.pid ?? process.pid;
    this.onError = opts.onError;
  }

  startSpan(name: string, opts: StartSpanOptions = {}): ActiveSpan {
    const parent = isValidSpanContext(opts.parent ?? undefined) ? (opts.parent as SpanContextLike) : undefined;
    if (!this.enabled) {
      // Cheap no-op that still passes the parent's context through.
      return new NonRecordingSpan(parent ? { ...parent } : INVALID_CONTEXT, String(name));
    }
    const traceId = parent ? parent.traceId : newTraceId();
    const sampled = shouldSample(this.sampler, traceId, parent);
    const context: SpanContextLike = {
      traceId,
      spanId: newSpanId(),
      traceFlags: sampled ? TRACE_FLAG_SAMPLED : 0,
      // Child spans carry the parent's tracestate on (W3C Trace Context).
      ...(parent?.traceState ? { traceState: parent.traceState } : {}),
    };
    if (!sampled) return new NonRecordingSpan(context, String(name));
    const kind = opts.kind && SPAN_KINDS.includes(opts.kind) ? opts.kind : 'internal';
    return new RecordingSpan(this, context, String(name), parent, kind, opts);
  }

  /** @internal */
  _emit(rec: SpanRecord): void {
    try {
      this.sink(rec);
    } catch (err) {
      try {
        this.onError?.(err);
      } catch {
        /* never throw into the caller */
      }
    }
  }
}
