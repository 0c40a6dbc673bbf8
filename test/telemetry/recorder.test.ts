import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SpanRecorder,
  SpanStatusCode,
  shouldSample,
  traceIdRatioSampled,
  hrNow,
  toHrTime,
  newTraceId,
  newSpanId,
  ATTRIBUTE_COUNT_LIMIT,
  type HrTime,
  type SpanRecord,
  type SpanRecorderOptions,
} from '../../src/telemetry/recorder.js';
import { parseTraceparent } from '../../src/telemetry/traceparent.js';
import type { SamplerConfig } from '../../src/telemetry/config.js';

const hrTimeToMillis = (t: HrTime): number => t[0] * 1000 + t[1] / 1e6;

function make(opts: Partial<SpanRecorderOptions> = {}): { rec: SpanRecorder; out: SpanRecord[] } {
  const out: SpanRecord[] = [];
  const rec = new SpanRecorder((s) => out.push(s), { enabled: true, ...opts });
  return { rec, out };
}

const REMOTE = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')!;
const REMOTE_UNSAMPLED = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')!;

test('ids: random, lowercase hex, right length, unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = newTraceId();
    const s = newSpanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.ok(!seen.has(t));
    seen.add(t);
  }
});

test('time: hrNow tracks Date.now; inputs accepted as HrTime, ms, Date', () => {
  const a = hrTimeToMillis(hrNow());
  assert.ok(Math.abs(a - Date.now()) < 50, `${a} vs ${Date.now()}`);
  assert.ok(Number.isInteger(hrNow()[1]) && hrNow()[1] < 1e9);
  assert.deepEqual(toHrTime([5, 6]), [5, 6]);
  assert.deepEqual(toHrTime(1500.25), [1, 500_250_000]);
  assert.deepEqual(toHrTime(new Date(2500)), [2, 500_000_000]);
  const t0 = hrNow();
  const t1 = hrNow();
  assert.ok(hrTimeToMillis(t1) >= hrTimeToMillis(t0));
});

test('time: hrNow follows the wall clock within 2 ms when the monotonic clock drifts from it (a long-lived daemon)', (t) => {
  // The wall clock runs 30 ms ahead of, then 40 ms behind, the monotonic one.
  for (const skewMs of [30, -40]) {
    const realNow = Date.now.bind(Date);
    t.mock.method(Date, 'now', () => realNow() + skewMs);
    const ms = hrTimeToMillis(hrNow());
    const wall = Date.now();
    assert.ok(ms >= wall - 2 && ms <= wall + 2, `${skewMs} ms skew: hrNow ${ms} vs wall ${wall}`);
    t.mock.restoreAll();
  }
});

test('root span: new trace, sampled, record shape is plain JSON', () => {
  const { rec, out } = make({ process: 'shim', pid: 1234 });
  const s = rec.startSpan('root', {
    kind: 'server',
    attributes: { 'container.id': 'c1', n: 1, ok: true, list: ['a', 'b'] },
  });
  assert.match(s.context.traceId, /^[0-9a-f]{32}$/);
  assert.match(s.context.spanId, /^[0-9a-f]{16}$/);
  assert.equal(s.context.traceFlags, 1);
  assert.equal(s.traceparent(), `00-${s.context.traceId}-${s.context.spanId}-01`);
  assert.equal(s.isRecording(), true);
  assert.equal(out.length, 0, 'nothing emitted before end');
  s.end();
  assert.equal(out.length, 1);
  const r = out[0];
  assert.equal(r.name, 'root');
  assert.equal(r.kind, 'server');
  assert.equal(r.parentSpanId, undefined);
  assert.equal(r.process, 'shim');
  assert.equal(r.pid, 1234);
  assert.deepEqual(r.attributes, { 'container.id': 'c1', n: 1, ok: true, list: ['a', 'b'] });
  assert.deepEqual(r.status, { code: 0 });
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'JSON round trip is lossless');
  assert.deepEqual(structuredClone(r), r);
  assert.ok(hrTimeToMillis(r.endTime) >= hrTimeToMillis(r.startTime));
});

test('parenting: local and remote parents', () => {
  const { rec, out } = make();
  const root = rec.startSpan('root', { parent: REMOTE });
  assert.equal(root.context.traceId, REMOTE.traceId);
  assert.notEqual(root.context.spanId, REMOTE.spanId);
  const child = rec.startSpan('child', { parent: root.context });
  assert.equal(child.context.traceId, REMOTE.traceId);
  child.end();
  root.end();
  const [c, r] = out;
  assert.equal(r.parentSpanId, REMOTE.spanId);
  assert.equal(r.parentIsRemote, true);
  assert.equal(c.parentSpanId, root.context.spanId);
  assert.equal(c.parentIsRemote, undefined);
  // an invalid parent makes a root
  const orphan = rec.startSpan('x', { parent: { traceId: 'nope', spanId: 'nope', traceFlags: 1 } });
  orphan.end();
  assert.equal(out[2].parentSpanId, undefined);
  assert.notEqual(out[2].traceId, REMOTE.traceId);
});

test('explicit start/end times, end before start is clamped, end is idempotent', () => {
  const { rec, out } = make();
  const s = rec.startSpan('t', { startTime: 1_000_000 });
  s.end(1_000_250);
  s.end(2_000_000);
  s.setAttribute('late', 1);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0].startTime, [1000, 0]);
  assert.deepEqual(out[0].endTime, [1000, 250_000_000]);
  assert.equal(out[0].attributes.late, undefined);
  assert.equal(s.ended, true);
  assert.equal(s.isRecording(), false);
  const b = rec.startSpan('b', { startTime: [2000, 5] });
  b.end([1999, 0]);
  assert.deepEqual(out[1].endTime, [2000, 5]);
});

test('attributes: sanitised, undefined skipped, bigint converted, limit applied', () => {
  const { rec, out } = make();
  const s = rec.startSpan('a');
  s.setAttribute('u', undefined)
    .setAttribute('n', null)
    .setAttribute('big', 10n)
    .setAttribute('huge', 2n ** 80n)
    .setAttribute('obj', { x: 1 } as never)
    .setAttribute('mixed', [1, 'a'] as never)
    .setAttribute('', 'empty key')
    .setAttributes({ s: 'x', arr: [1, 2, null as never] });
  for (let i = 0; i < ATTRIBUTE_COUNT_LIMIT + 10; i++) s.setAttribute(`k${i}`, i);
  s.setAttribute('s', 'overwrite is fine at the limit');
  s.end();
  const a = out[0].attributes;
  assert.equal('u' in a, false);
  assert.equal('n' in a, false);
  assert.equal(a.big, 10);
  assert.equal(a.huge, (2n ** 80n).toString());
  assert.equal('obj' in a, false);
  assert.equal('mixed' in a, false);
  assert.deepEqual(a.arr, [1, 2]);
  assert.equal(a.s, 'overwrite is fine at the limit');
  assert.equal(Object.keys(a).length, ATTRIBUTE_COUNT_LIMIT);
  // big, huge, arr, s + k0..k137: 142 distinct keys, 128 kept
  assert.equal(out[0].droppedAttributesCount, 14);
});

test('events, status and exceptions', () => {
  const { rec, out } = make();
  const s = rec.startSpan('e');
  s.addEvent('compiled', { bytes: 10 }, 5000);
  const err = new TypeError('boom');
  s.recordException(err);
  s.end();
  const r = out[0];
  assert.equal(r.events.length, 2);
  assert.deepEqual(r.events[0], { name: 'compiled', time: [5, 0], attributes: { bytes: 10 } });
  const ex = r.events[1];
  assert.equal(ex.name, 'exception');
  assert.equal(ex.attributes['exception.type'], 'TypeError');
  assert.equal(ex.attributes['exception.message'], 'boom');
  assert.match(String(ex.attributes['exception.stacktrace']), /TypeError: boom/);
  assert.deepEqual(r.status, { code: SpanStatusCode.ERROR, message: 'boom' });

  const s2 = rec.startSpan('s2');
  s2.recordException('plain string');
  s2.end();
  assert.deepEqual(out[1].events[0].attributes, { 'exception.message': 'plain string' });
  assert.equal(out[1].status.code, 2);

  // status rules: UNSET ignored, OK final, message only with ERROR
  const s3 = rec.startSpan('s3');
  s3.setStatus(SpanStatusCode.ERROR, 'first').setStatus(SpanStatusCode.UNSET);
  s3.end();
  assert.deepEqual(out[2].status, { code: 2, message: 'first' });
  const s4 = rec.startSpan('s4');
  s4.setStatus(SpanStatusCode.OK, 'ignored message')
    .setStatus(SpanStatusCode.ERROR, 'late')
    .recordException(new Error('x'));
  s4.end();
  assert.deepEqual(out[3].status, { code: 1 });
  assert.equal(out[3].events[0].name, 'exception');
  const s5 = rec.startSpan('old');
  s5.updateName('new');
  s5.end();
  assert.equal(out[4].name, 'new');
});

test('links', () => {
  const { rec, out } = make();
  const other = rec.startSpan('other');
  const s = rec.startSpan('linked', {
    links: [
      { context: other.context, attributes: { why: 'root' } },
      { context: { traceId: 'bad', spanId: 'bad', traceFlags: 0 } },
    ],
  });
  s.end();
  assert.deepEqual(out[0].links, [
    {
      context: { traceId: other.context.traceId, spanId: other.context.spanId, traceFlags: 1 },
      attributes: { why: 'root' },
    },
  ]);
});

test('disabled recorder: cheap no-op spans that pass the parent through', () => {
  const out: SpanRecord[] = [];
  const rec = new SpanRecorder((s) => out.push(s), { enabled: false });
  const s = rec.startSpan('x', { attributes: { a: 1 } });
  assert.equal(s.isRecording(), false);
  assert.equal(s.traceparent(), '');
  assert.equal(s.context.traceFlags, 0);
  assert.match(s.context.traceId, /^[0-9a-f]{32}$/);
  s.setAttribute('b', 2).addEvent('e').recordException(new Error('x')).setStatus(2).end();
  const p = rec.startSpan('y', { parent: REMOTE });
  assert.equal(p.traceparent(), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  const q = rec.startSpan('z', { parent: p.context });
  assert.equal(q.traceparent(), p.traceparent());
  p.end();
  assert.equal(out.length, 0);
});

test('sink failures never reach the caller', () => {
  const errors: unknown[] = [];
  const rec = new SpanRecorder(
    () => {
      throw new Error('sink down');
    },
    { enabled: true, onError: (e) => errors.push(e) },
  );
  assert.doesNotThrow(() => rec.startSpan('x').end());
  assert.equal(errors.length, 1);
  const rec2 = new SpanRecorder(
    () => {
      throw new Error('sink down');
    },
    {
      enabled: true,
      onError: () => {
        throw new Error('and the handler too');
      },
    },
  );
  assert.doesNotThrow(() => rec2.startSpan('x').end());
});

// ---------------------------------------------------------------------------
// sampler

const S = (name: SamplerConfig['name'], ratio = 1): SamplerConfig => ({ name, ratio });

test('sampler decisions', () => {
  const tid = newTraceId();
  const sampledParent = { traceId: tid, spanId: newSpanId(), traceFlags: 1 };
  const unsampledParent = { ...sampledParent, traceFlags: 0 };
  assert.equal(shouldSample(S('always_on'), tid, unsampledParent), true);
  assert.equal(shouldSample(S('always_off'), tid, sampledParent), false);
  assert.equal(shouldSample(S('parentbased_always_on'), tid, undefined), true);
  assert.equal(shouldSample(S('parentbased_always_on'), tid, sampledParent), true);
  assert.equal(shouldSample(S('parentbased_always_on'), tid, unsampledParent), false);
  assert.equal(shouldSample(S('parentbased_always_off'), tid, undefined), false);
  assert.equal(shouldSample(S('parentbased_always_off'), tid, sampledParent), true);
  assert.equal(shouldSample(S('parentbased_always_off'), tid, unsampledParent), false);
  assert.equal(shouldSample(S('traceidratio', 0), tid, sampledParent), false);
  assert.equal(shouldSample(S('traceidratio', 1), tid, unsampledParent), true);
  assert.equal(shouldSample(S('parentbased_traceidratio', 0), tid, sampledParent), true);
  assert.equal(shouldSample(S('parentbased_traceidratio', 1), tid, unsampledParent), false);
  assert.equal(shouldSample(S('parentbased_traceidratio', 0), tid, undefined), false);
  assert.equal(shouldSample(undefined, tid, undefined), true);
});

test('traceidratio: deterministic, boundary exact, roughly the ratio', () => {
  // low 8 bytes >> 1 compared with ratio * 2^63
  assert.equal(traceIdRatioSampled('ffffffffffffffff' + '0000000000000000', 0.5), true);
  assert.equal(traceIdRatioSampled('0000000000000000' + '7fffffffffffffff', 0.5), true);
  assert.equal(traceIdRatioSampled('0000000000000000' + '8000000000000000', 0.5), false);
  assert.equal(traceIdRatioSampled('0000000000000000' + 'ffffffffffffffff', 0.999), false);
  let n = 0;
  const N = 4000;
  for (let i = 0; i < N; i++) {
    const t = newTraceId();
    const a = traceIdRatioSampled(t, 0.25);
    assert.equal(traceIdRatioSampled(t, 0.25), a, 'deterministic');
    if (a) n++;
    if (a) assert.equal(traceIdRatioSampled(t, 0.5), true, 'monotonic in the ratio');
  }
  assert.ok(n > N * 0.2 && n < N * 0.3, `sampled ${n}/${N}`);
});

test('recorder applies the sampler: unsampled spans propagate flags 00 and emit nothing', () => {
  const { rec, out } = make({ sampler: S('always_off') });
  const s = rec.startSpan('x');
  assert.equal(s.isRecording(), false);
  assert.match(s.traceparent(), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  s.setAttribute('a', 1).end();
  assert.equal(out.length, 0);

  const pb = make({ sampler: S('parentbased_always_on') });
  const u = pb.rec.startSpan('child-of-unsampled', { parent: REMOTE_UNSAMPLED });
  assert.equal(u.context.traceId, REMOTE_UNSAMPLED.traceId);
  assert.equal(u.context.traceFlags, 0);
  assert.match(u.traceparent(), /-00$/);
  u.end();
  assert.equal(pb.out.length, 0);
  const v = pb.rec.startSpan('child-of-sampled', { parent: REMOTE });
  v.end();
  assert.equal(pb.out.length, 1);
});

// ---------------------------------------------------------------------------
// tracestate and snapshots

test("child spans inherit the parent's tracestate; snapshot() is the record so far, end() still emits once", () => {
  const out: SpanRecord[] = [];
  const r = new SpanRecorder((s) => out.push(s), { enabled: true, process: 'child', pid: 77 });
  const parent = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: 1,
    isRemote: true,
    traceState: 'vendor=abc,x=1',
  };
  const run = r.startSpan('wasm.run', { parent, attributes: { a: 1 } });
  assert.equal(run.context.traceState, 'vendor=abc,x=1');
  const snap = run.snapshot();
  assert.equal(snap?.name, 'wasm.run');
  assert.equal(snap?.parentSpanId, '00f067aa0ba902b7');
  assert.equal(snap?.traceState, 'vendor=abc,x=1');
  assert.equal(snap?.pid, 77);
  assert.equal(out.length, 0, 'a snapshot is not emitted');
  run.setAttribute('b', 2).end();
  assert.equal(out.length, 1);
  assert.deepEqual(out[0].attributes, { a: 1, b: 2 });
  assert.equal(snap?.attributes.b, undefined, 'the snapshot does not change with the span');
  assert.equal(run.snapshot(), undefined, 'nothing to snapshot once ended');
  const off = new SpanRecorder(() => undefined, { enabled: false });
  assert.equal(off.startSpan('x', { parent }).snapshot(), undefined);
});
