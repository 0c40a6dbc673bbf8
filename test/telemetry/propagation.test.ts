// Carriers, the child's IPC messages and the daemon's side of a child's spans, without processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PROPAGATORS,
  extractFromEnv,
  extractFromMetadata,
  injectEnv,
  readPropagators,
} from '../../src/telemetry/propagation.js';
import { parseTraceContextEnv, parseTracestate } from '../../src/telemetry/traceparent.js';
import { SpanRecorder, type SpanRecord } from '../../src/telemetry/recorder.js';
import { ChildSpanRelay } from '../../src/telemetry/child-relay.js';
import { parseFromChild } from '../../src/child/protocol.js';
import { jsonRoundTrip } from '../harness/index.js';

const TID = '0af7651916cd43dd8448eb211c80319c';
const TP = `00-${TID}-b7ad6b7169203331-01`;

test('tracestate: well-formed lists kept (whitespace trimmed), malformed ones dropped whole', () => {
  assert.equal(parseTracestate('vendor=abc, other=1'), 'vendor=abc,other=1');
  assert.equal(parseTracestate('t@sys=v'), 't@sys=v');
  for (const bad of [
    '',
    'no-equals',
    'UPPER=1',
    'a=b,=c',
    'x'.repeat(600),
    'a=b\nc=d',
    Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','),
  ]) {
    assert.equal(parseTracestate(bad), undefined, JSON.stringify(bad.slice(0, 40)));
  }
  assert.equal(parseTraceContextEnv(JSON.stringify({ traceparent: TP, tracestate: 'json=1' }))?.traceState, 'json=1');
  assert.equal(parseTraceContextEnv(JSON.stringify({ traceparent: TP, tracestate: 'BAD' }))?.traceState, undefined);
});

test('environment carriers: TRACEPARENT/TRACESTATE over TRACECONTEXT, BAGGAGE; each propagator on its own', () => {
  const other = '00-11111111111111111111111111111111-2222222222222222-01';
  const env = { TRACEPARENT: TP, TRACESTATE: 'a=1', TRACECONTEXT: other, BAGGAGE: 'k=v' };
  assert.deepEqual(extractFromEnv(env, DEFAULT_PROPAGATORS), {
    parent: { traceId: TID, spanId: 'b7ad6b7169203331', traceFlags: 1, isRemote: true, traceState: 'a=1' },
    baggage: 'k=v',
  });
  assert.equal(
    extractFromEnv({ TRACECONTEXT: other }, DEFAULT_PROPAGATORS).parent?.traceId,
    '11111111111111111111111111111111',
  );
  assert.equal(
    extractFromEnv({ TRACEPARENT: 'junk', TRACECONTEXT: other }, DEFAULT_PROPAGATORS).parent?.spanId,
    '2222222222222222',
  );
  assert.deepEqual(extractFromEnv(env, readPropagators({ OTEL_PROPAGATORS: 'baggage' })), { baggage: 'k=v' });
  assert.deepEqual(extractFromEnv(env, readPropagators({ OTEL_PROPAGATORS: 'none' })), {});
  const md = new Map([
    ['traceparent', TP],
    ['tracestate', 'm=1'],
    ['baggage', 'x=y'],
  ]);
  assert.equal(extractFromMetadata((k) => md.get(k), DEFAULT_PROPAGATORS).parent?.traceState, 'm=1');
  assert.deepEqual(
    extractFromMetadata((k) => md.get(k), readPropagators({ OTEL_PROPAGATORS: 'none' })),
    {},
  );
});

test("the module's variables: TRACEPARENT and TRACECONTEXT alike, TRACESTATE, BAGGAGE; nothing for an invalid context or none", () => {
  const ctx = { traceId: TID, spanId: 'b7ad6b7169203331', traceFlags: 0, traceState: 's=1' };
  const tp0 = `00-${TID}-b7ad6b7169203331-00`;
  assert.deepEqual(injectEnv(ctx, 'k=v', DEFAULT_PROPAGATORS), {
    TRACEPARENT: tp0,
    TRACECONTEXT: tp0,
    TRACESTATE: 's=1',
    BAGGAGE: 'k=v',
  });
  assert.deepEqual(injectEnv({ ...ctx, traceId: '0'.repeat(32) }, undefined, DEFAULT_PROPAGATORS), {});
  assert.deepEqual(injectEnv(ctx, 'k=v', readPropagators({ OTEL_PROPAGATORS: 'none' })), {});
  assert.deepEqual(injectEnv(ctx, 'k=v', readPropagators({ OTEL_PROPAGATORS: 'tracecontext' })), {
    TRACEPARENT: tp0,
    TRACECONTEXT: tp0,
    TRACESTATE: 's=1',
  });
});

function runSpan(): { rec: SpanRecorder; open: SpanRecord; end: () => SpanRecord } {
  const out: SpanRecord[] = [];
  const rec = new SpanRecorder((r) => out.push(r), { enabled: true, process: 'child', pid: 4242 });
  const span = rec.startSpan('wasm.run', { parent: { traceId: TID, spanId: 'b7ad6b7169203331', traceFlags: 1 } });
  return {
    rec,
    open: span.snapshot()!,
    end: () => {
      span.end();
      return out[0];
    },
  };
}

test('child IPC messages are parsed, never cast: garbage refused, invalid span records left out', () => {
  assert.deepEqual(parseFromChild({ t: 'ready' }), { t: 'ready' });
  assert.equal(parseFromChild({ t: 'nope' }), undefined);
  assert.equal(parseFromChild('ready'), undefined);
  assert.equal(parseFromChild(null), undefined);
  assert.deepEqual(parseFromChild({ t: 'error' }), { t: 'error', message: 'the Wasm child failed' });
  const { end, open } = runSpan();
  const good = jsonRoundTrip(end());
  const m = parseFromChild({
    t: 'spans',
    records: [good, { ...good, spanId: 'zz' }, { ...good, process: 'shim' }, { ...good, startTime: [1, 2e9] }, 7],
  });
  assert.equal(m?.t, 'spans');
  assert.deepEqual(m?.t === 'spans' && m.records.map((r) => r.spanId), [good.spanId]);
  assert.equal(parseFromChild({ t: 'spans', records: 'x' }), undefined);
  const o = parseFromChild({ t: 'span-open', span: jsonRoundTrip(open) });
  assert.equal(o?.t === 'span-open' && o.span.name, 'wasm.run');
  assert.equal(parseFromChild({ t: 'span-open', span: { ...open, pid: -1 } }), undefined);
  // Attributes of the wrong type are left out, not passed on.
  const odd = parseFromChild({
    t: 'spans',
    records: [{ ...good, attributes: { ok: 1, obj: { a: 1 }, mixed: [1, 'a'] } }],
  });
  assert.deepEqual(odd?.t === 'spans' && odd.records[0].attributes, { ok: 1 });
});

test('ChildSpanRelay: a span the child ended is passed on once; one it never ended is ended at its death, failed by the signal', () => {
  const delivered: SpanRecord[] = [];
  const relay = new ChildSpanRelay((r) => delivered.push(...r));
  const a = runSpan();
  relay.opened(a.open);
  relay.finished([a.end()]);
  relay.childExited({ status: 0, signal: null, exitedAt: new Date() });
  assert.deepEqual(
    delivered.map((r) => r.name),
    ['wasm.run'],
  );

  delivered.length = 0;
  const b = runSpan();
  relay.opened(b.open);
  const at = new Date(Date.now() + 50);
  relay.childExited({ status: 137, signal: 'SIGKILL', exitedAt: at });
  assert.equal(delivered.length, 1);
  const killed = delivered[0];
  assert.equal(killed.spanId, b.open.spanId);
  assert.equal(killed.parentSpanId, 'b7ad6b7169203331');
  assert.deepEqual(killed.status, { code: 2, message: 'the Wasm process was killed by SIGKILL' });
  assert.equal(killed.attributes['process.exit.code'], 137);
  assert.equal(killed.attributes['error.type'], 'SIGKILL');
  assert.equal(killed.endTime[0] * 1e3 + killed.endTime[1] / 1e6 >= at.getTime() - 1, true);
  relay.childExited({ status: 137, signal: 'SIGKILL', exitedAt: at });
  assert.equal(delivered.length, 1, 'ended once');
});
