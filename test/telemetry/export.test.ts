// Real export through the worker to an in-process OTLP receiver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { startTelemetry, newTraceId, type Telemetry, type SpanRecord } from '../../src/telemetry/index.js';
import { SpanRecorder } from '../../src/telemetry/recorder.js';
import { parseTraceparent } from '../../src/telemetry/traceparent.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../src/otlp/receiver.js';
import { type BadEndpoints, sleep, startBadEndpoints, until } from '../harness/index.js';
import { collectLogs, startCaptureServer } from './helpers.js';

let rcv: OtlpReceiver;
let bad: BadEndpoints;
before(async () => {
  rcv = await startOtlpReceiver({ httpPort: 0, grpcPort: 0 });
  bad = await startBadEndpoints();
});
after(async () => {
  await rcv.close();
  await bad.close();
});

const tracesOf = (traceId: string): ReceivedSpan[] => rcv.spans().filter((s) => s.traceId === traceId);

async function withTelemetry<T>(
  env: Record<string, string>,
  fn: (t: Telemetry, logs: ReturnType<typeof collectLogs>) => Promise<T>,
  opts: { autoStart?: boolean; maxBufferedSpans?: number; workerUrl?: URL } = {},
): Promise<T> {
  const logs = collectLogs();
  const t = startTelemetry({ env, log: logs.log, ...opts });
  try {
    return await fn(t, logs);
  } finally {
    await t.shutdown(2000);
  }
}

/** A daemon-like trace: root (remote parent) -> create RPC -> child process spans relayed via records. */
function exerciseTrace(t: Telemetry): { traceId: string; names: string[] } {
  const remote = { traceId: newTraceId(), spanId: '0123456789abcdef', traceFlags: 1, isRemote: true };
  const root = t.recorder.startSpan('container', { parent: remote, attributes: { 'container.id': 'c1' } });
  const create = t.recorder.startSpan('containerd.task.v2.Task/Create', {
    parent: root.context,
    kind: 'server',
    attributes: { 'rpc.system': 'ttrpc', 'rpc.method': 'Create' },
    links: [{ context: root.context }],
  });
  // The child process: TRACECONTEXT from the create span, records relayed as plain JSON.
  const drained: SpanRecord[] = [];
  const child = new SpanRecorder((r) => drained.push(r), { enabled: true, process: 'child', pid: 424242 });
  const run = child.startSpan('wasm.run', {
    parent: parseTraceparent(create.traceparent()),
    attributes: { 'wasm.exit_code': 0 },
  });
  child.startSpan('wasm.compile', { parent: run.context, attributes: { 'wasm.module.size': 123 } }).end();
  run.end();
  const relayed = JSON.parse(JSON.stringify(drained)) as SpanRecord[];
  t.submit(relayed);
  const failed = t.recorder.startSpan('containerd.task.v2.Task/Kill', { parent: root.context, kind: 'server' });
  failed.recordException(Object.assign(new Error('not found'), { name: 'NotFoundError' }));
  failed.end();
  create.end();
  root.end();
  return {
    traceId: remote.traceId,
    names: ['container', 'containerd.task.v2.Task/Create', 'containerd.task.v2.Task/Kill', 'wasm.run', 'wasm.compile'],
  };
}

function checkTrace(spans: ReceivedSpan[], protocol: 'http' | 'grpc'): void {
  const by = (n: string): ReceivedSpan => {
    const s = spans.find((x) => x.name === n);
    assert.ok(s, `span ${n} missing; got ${spans.map((x) => x.name).join(', ')}`);
    return s;
  };
  const root = by('container');
  const create = by('containerd.task.v2.Task/Create');
  const kill = by('containerd.task.v2.Task/Kill');
  const run = by('wasm.run');
  const compile = by('wasm.compile');
  assert.equal(root.parentSpanId, '0123456789abcdef');
  assert.equal(create.parentSpanId, root.spanId);
  assert.equal(kill.parentSpanId, root.spanId);
  assert.equal(run.parentSpanId, create.spanId);
  assert.equal(compile.parentSpanId, run.spanId);
  for (const s of spans) {
    assert.equal(s.protocol, protocol);
    assert.equal(s.resource['service.name'], 'containerd-shim-wasmts');
    assert.equal(s.scope.name, 'wasmts');
  }
  for (const s of [root, create, kill]) {
    assert.equal(s.resource['wasmts.process'], 'shim');
    assert.equal(s.resource['process.pid'], process.pid);
  }
  for (const s of [run, compile]) {
    assert.equal(s.resource['wasmts.process'], 'child');
    assert.equal(s.resource['process.pid'], 424242);
  }
  assert.equal(create.kind, 2, 'server');
  assert.equal(root.kind, 1, 'internal');
  assert.equal(create.attributes['rpc.system'], 'ttrpc');
  assert.equal(compile.attributes['wasm.module.size'], 123);
  assert.deepEqual(
    create.links.map((l) => l.spanId),
    [root.spanId],
  );
  assert.equal(kill.status.code, 2);
  assert.equal(kill.status.message, 'not found');
  const ex = kill.events.find((e) => e.name === 'exception');
  assert.equal(ex?.attributes['exception.type'], 'NotFoundError');
  assert.ok(root.endTimeUnixNano >= root.startTimeUnixNano);
  assert.ok(create.startTimeUnixNano >= root.startTimeUnixNano);
}

for (const [protocol, via] of [
  ['http/protobuf', 'http'],
  ['grpc', 'grpc'],
  ['http/json', 'http'],
] as const) {
  test(`exports over ${protocol}: parents, resources (shim/child), links, errors`, async () => {
    const env: Record<string, string> = {
      OTEL_EXPORTER_OTLP_ENDPOINT: protocol === 'grpc' ? rcv.grpcUrl : rcv.httpUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    };
    await withTelemetry(env, async (t, { logs }) => {
      assert.equal(t.enabled, true);
      const { traceId, names } = exerciseTrace(t);
      await t.flush(15000);
      const spans = await rcv.waitFor(() => tracesOf(traceId).length >= names.length, 10000);
      checkTrace(
        spans.filter((s) => s.traceId === traceId),
        via,
      );
      assert.equal(t.state, 'ready');
      assert.ok(typeof t.workerReadyMs === 'number');
      assert.deepEqual(
        logs.filter((l) => l.level === 'warn' || l.level === 'error'),
        [],
      );
    });
  });
}

test('spans started before the worker is ready are not lost (explicit start times kept)', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl };
  await withTelemetry(
    env,
    async (t) => {
      const startMs = Date.now() - 60_000;
      const early = t.recorder.startSpan('early', { startTime: startMs });
      const ids = [early.context.traceId];
      for (let i = 0; i < 50; i++) {
        const s = t.recorder.startSpan(`burst-${i}`, { parent: early.context });
        s.end();
      }
      early.end();
      assert.equal(t.state, 'idle', 'nothing loaded yet (autoStart off)');
      await t.flush(15000);
      const spans = await rcv.waitFor(() => tracesOf(ids[0]).length >= 51, 10000);
      const e = spans.find((s) => s.name === 'early' && s.traceId === ids[0])!;
      assert.equal(Number(e.startTimeUnixNano / 1_000_000n), startMs);
    },
    { autoStart: false },
  );
});

test('autoStart: the first span loads the worker in the background; spans recorded meanwhile arrive', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl, OTEL_BSP_SCHEDULE_DELAY: '50' };
  await withTelemetry(env, async (t) => {
    const s = t.recorder.startSpan('first');
    s.end();
    assert.equal(t.state, 'idle', 'the worker is not spawned synchronously');
    await new Promise((r) => setImmediate(r));
    await sleep(5);
    assert.equal(t.state, 'starting');
    const more = t.recorder.startSpan('while-loading', { parent: s.context });
    more.end();
    // No flush: OTEL_BSP_SCHEDULE_DELAY=50 exports on its own once loaded.
    await rcv.waitFor(() => tracesOf(s.context.traceId).length >= 2, 15000);
  });
});

test('per-signal endpoint and protocol override the generic ones', async () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${bad.deadPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: rcv.grpcUrl,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
  };
  await withTelemetry(env, async (t) => {
    assert.equal(t.config.enabled && t.config.protocol, 'grpc');
    const s = t.recorder.startSpan('override');
    s.end();
    await t.flush(15000);
    const spans = await rcv.waitFor(() => tracesOf(s.context.traceId).length >= 1, 10000);
    assert.equal(spans.find((x) => x.traceId === s.context.traceId)!.protocol, 'grpc');
  });
});

test('OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES reach the resource', async () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl,
    OTEL_SERVICE_NAME: 'my-shim',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging,host.name=node%2C1,service.name=ignored',
  };
  await withTelemetry(env, async (t) => {
    const s = t.recorder.startSpan('res');
    s.end();
    t.submit([childRecord(s.context.traceId)]);
    await t.flush(15000);
    const spans = (await rcv.waitFor(() => tracesOf(s.context.traceId).length >= 2, 10000)).filter(
      (x) => x.traceId === s.context.traceId,
    );
    for (const x of spans) {
      assert.equal(x.resource['service.name'], 'my-shim');
      assert.equal(x.resource['deployment.environment'], 'staging');
      assert.equal(x.resource['host.name'], 'node,1');
    }
    assert.deepEqual(spans.map((x) => x.resource['wasmts.process']).sort(), ['child', 'shim']);
  });
});

function childRecord(traceId: string): SpanRecord {
  return {
    traceId,
    spanId: '1111111111111111',
    traceFlags: 1,
    name: 'relayed',
    kind: 'internal',
    startTime: [1_700_000_000, 0],
    endTime: [1_700_000_001, 5],
    attributes: {},
    status: { code: 0 },
    events: [],
    links: [],
    process: 'child',
    pid: 99,
  };
}

test('malformed relayed records are dropped, valid ones kept', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl };
  await withTelemetry(env, async (t) => {
    const traceId = '77777777777777777777777777777777';
    const ok = childRecord(traceId);
    t.submit([ok, { ...ok, spanId: 'XYZ' }, { ...ok, startTime: 'yesterday' } as never, null as never, 42 as never]);
    t.submit('not an array' as never);
    await t.flush(15000);
    const stats = await t.stats(5000);
    // The worker checks every record again (parseSpanRecord), whatever the IPC seam let through.
    assert.equal(stats?.received, 5);
    assert.equal(stats?.invalid, 4);
    await rcv.waitFor(() => tracesOf(traceId).length >= 1, 10000);
  });
});

test('OTEL_EXPORTER_OTLP_HEADERS and _TRACES_HEADERS reach the server (merged, per-signal wins)', async () => {
  const cap = await startCaptureServer();
  try {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: cap.url,
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-both=generic',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-both=specific,x-tenant=t1',
    };
    await withTelemetry(env, async (t) => {
      t.recorder.startSpan('h').end();
      await t.flush(15000);
      assert.equal(cap.requests.length, 1);
      const h = cap.requests[0].headers;
      assert.equal(cap.requests[0].url, '/v1/traces');
      assert.equal(h['content-type'], 'application/x-protobuf');
      assert.equal(h.authorization, 'Bearer abc');
      assert.equal(h['x-both'], 'specific');
      assert.equal(h['x-tenant'], 't1');
    });
  } finally {
    await cap.close();
  }
});

test('OTEL_EXPORTER_OTLP_COMPRESSION=gzip compresses the body', async () => {
  const cap = await startCaptureServer();
  try {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: cap.url,
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    };
    await withTelemetry(env, async (t) => {
      t.recorder.startSpan('gz', { attributes: { pad: 'x'.repeat(2000) } }).end();
      await t.flush(15000);
      assert.equal(cap.requests.length, 1);
      const r = cap.requests[0];
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.ok(r.rawLength < r.body.length, 'compressed');
      assert.match(r.body.toString(), /"name":"gz"/);
      assert.ok(zlib.constants);
    });
  } finally {
    await cap.close();
  }
});

test('OTEL_BSP_MAX_EXPORT_BATCH_SIZE splits batches; OTEL_BSP_SCHEDULE_DELAY exports without a flush', async () => {
  const cap = await startCaptureServer();
  try {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: cap.url,
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    await withTelemetry(env, async (t) => {
      t.warmUp();
      await until('worker ready', () => t.state === 'ready', 15000, 20);
      const t0 = Date.now();
      for (let i = 0; i < 5; i++) t.recorder.startSpan(`b${i}`).end();
      // 5 spans, batches of 2 -> 3 requests, all without calling flush (default delay would be 5 s).
      await until('3 export requests', () => cap.requests.length >= 3, 4500, 20);
      assert.ok(Date.now() - t0 < 4900, 'exported on the 100 ms schedule, not the 5 s default');
      assert.equal(cap.requests.length, 3);
    });
  } finally {
    await cap.close();
  }
});

test('flush waits for an export already in flight', async () => {
  const cap = await startCaptureServer({ delayMs: 400 });
  try {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: cap.url, OTEL_BSP_SCHEDULE_DELAY: '1' };
    await withTelemetry(env, async (t) => {
      t.warmUp();
      await until('worker ready', () => t.state === 'ready', 15000, 20);
      t.recorder.startSpan('in-flight').end();
      await until('the timer export to start', () => cap.requests.length === 1, 10000, 20);
      await t.flush(10000);
      assert.equal((await t.stats(5000))?.exported, 1, 'flush resolved before the in-flight export finished');
    });
  } finally {
    await cap.close();
  }
});

test('OTEL_EXPORTER_OTLP_TIMEOUT bounds an export to an endpoint that never answers', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${bad.hangPort}`, OTEL_EXPORTER_OTLP_TIMEOUT: '300' };
  await withTelemetry(env, async (t, { logs }) => {
    t.warmUp();
    await until('worker ready', () => t.state === 'ready', 15000, 20);
    t.recorder.startSpan('hang').end();
    const t0 = performance.now();
    await t.flush(9000);
    const took = performance.now() - t0;
    // 300 ms, not the 10 s default (generous margin for a loaded machine)
    assert.ok(took < 5000, `flush took ${took} ms with a 300 ms export timeout`);
    const stats = await t.stats(5000);
    assert.equal(stats?.failedExports, 1);
    assert.equal(stats?.exported, 0);
    assert.equal(logs.filter((l) => /span export to .* failed/.test(l.msg)).length, 1);
  });
});

test('OTEL_BSP_EXPORT_TIMEOUT bounds a batch even when the exporter timeout is long', async () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${bad.hangPort}`,
    OTEL_EXPORTER_OTLP_TIMEOUT: '30000',
    OTEL_BSP_EXPORT_TIMEOUT: '300',
  };
  await withTelemetry(env, async (t) => {
    t.warmUp();
    await until('worker ready', () => t.state === 'ready', 15000, 20);
    t.recorder.startSpan('hang').end();
    const t0 = performance.now();
    await t.flush(9000);
    const took = performance.now() - t0;
    // 300 ms, not the exporter's 30 s (generous margin for a loaded machine)
    assert.ok(took >= 250 && took < 5000, `flush took ${took} ms with a 300 ms batch timeout`);
  });
});

test('OTEL_BSP_MAX_QUEUE_SIZE bounds the processor queue (and diag warnings are forwarded)', async () => {
  const cap = await startCaptureServer();
  try {
    // queue 2 (batch size clamped to 2 with a diag warning): of 5 spans arriving at once,
    // 2 go out immediately, 2 wait in the queue, 1 is dropped.
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: cap.url, OTEL_BSP_MAX_QUEUE_SIZE: '2' };
    await withTelemetry(
      env,
      async (t, { logs }) => {
        for (let i = 0; i < 5; i++) t.recorder.startSpan(`q${i}`).end();
        await t.flush(15000);
        const stats = await t.stats(5000);
        assert.equal(stats?.received, 5);
        assert.equal(stats?.exported, 4);
        assert.ok(
          logs.some((l) => l.level === 'warn' && /otel: .*maxExportBatchSize/.test(l.msg)),
          JSON.stringify(logs),
        );
      },
      { autoStart: false },
    );
    // OTEL_LOG_LEVEL=none silences the SDK's own diagnostics
    await withTelemetry(
      { ...env, OTEL_LOG_LEVEL: 'none' },
      async (t, { logs }) => {
        t.recorder.startSpan('quiet').end();
        await t.flush(15000);
        assert.equal(logs.filter((l) => /otel:/.test(l.msg)).length, 0, JSON.stringify(logs));
      },
      { autoStart: false },
    );
  } finally {
    await cap.close();
  }
});

test('OTEL_TRACES_SAMPLER=always_off: nothing exported, flags 00 propagated', async () => {
  const cap = await startCaptureServer();
  try {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: cap.url, OTEL_TRACES_SAMPLER: 'always_off' };
    await withTelemetry(env, async (t) => {
      const s = t.recorder.startSpan('unsampled');
      assert.match(s.traceparent(), /-00$/);
      s.end();
      await t.flush(3000);
      assert.equal(cap.requests.length, 0);
      assert.equal(t.state, 'idle', 'no record, no worker');
    });
  } finally {
    await cap.close();
  }
});

test('the buffer before the worker is ready is bounded: oldest dropped, a warning at once and the total by exit', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl };
  await withTelemetry(
    env,
    async (t, { logs }) => {
      const root = t.recorder.startSpan('bounded');
      const names: string[] = [];
      for (let i = 0; i < 10; i++) {
        names.push(`n${i}`);
        t.recorder.startSpan(`n${i}`, { parent: root.context }).end();
      }
      const dropLines = () =>
        logs.filter(
          (l) =>
            l.level === 'warn' &&
            /span export to \S+ \(http\/protobuf\) failed: more than 5 spans waiting for the exporter; \d+ spans? dropped/.test(
              l.msg,
            ),
        );
      assert.equal(dropLines().length, 1, 'the first drop is reported at once');
      assert.match(dropLines()[0].msg, new RegExp(`to ${rcv.httpUrl}/v1/traces .*; 1 span dropped`));
      await t.flush(15000);
      await rcv.waitFor(() => tracesOf(root.context.traceId).length >= 5, 10000);
      await sleep(100);
      assert.deepEqual(
        tracesOf(root.context.traceId)
          .map((s) => s.name)
          .sort(),
        names.slice(5),
      );
      await t.shutdown(2000);
      const counts = dropLines().map((l) => Number(/; (\d+) spans? dropped/.exec(l.msg)![1]));
      assert.deepEqual(counts, [1, 4], 'the rest is reported by exit');
    },
    { autoStart: false, maxBufferedSpans: 5 },
  );
});

test('a worker that dies is noticed: one log line, spans dropped, nothing throws', async () => {
  const crash = new URL('./fixtures/crash-worker.mjs', import.meta.url);
  for (const mode of ['throw', 'exit', 'init']) {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl, OTEL_RESOURCE_ATTRIBUTES: `test.crash=${mode}` };
    await withTelemetry(
      env,
      async (t, { logs }) => {
        t.recorder.startSpan('doomed').end();
        await t.flush(2000);
        await until(`worker dead (${mode})`, () => t.state === 'dead', 10000, 20);
        const errs = logs.filter((l) => l.level === 'error');
        assert.equal(errs.length, 1, JSON.stringify(logs));
        assert.match(errs[0].msg, /export worker (crashed|exited|failed to load)/);
        assert.doesNotThrow(() => {
          t.recorder.startSpan('after').end();
          t.submit([childRecord('88888888888888888888888888888888')]);
        });
        const t0 = performance.now();
        await t.flush(2000);
        await t.shutdown(2000);
        assert.ok(performance.now() - t0 < 1000, 'nothing to wait for once the worker is dead');
        assert.equal(logs.filter((l) => l.level === 'error').length, 1);
      },
      { workerUrl: crash },
    );
  }
});

test('the worker survives uncaught exceptions and unhandled rejections inside it', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl };
  await withTelemetry(
    env,
    async (t, { logs }) => {
      t.warmUp();
      await until('worker ready', () => t.state === 'ready', 15000, 20);
      await sleep(100);
      assert.equal(t.state, 'ready');
      const s = t.recorder.startSpan('still-alive');
      s.end();
      await t.flush(10000);
      await rcv.waitFor(() => tracesOf(s.context.traceId).length >= 1, 10000);
      assert.ok(
        logs.some((l) => /uncaught exception ignored: selftest/.test(l.msg)),
        JSON.stringify(logs),
      );
      assert.ok(
        logs.some((l) => /unhandled rejection ignored: selftest/.test(l.msg)),
        JSON.stringify(logs),
      );
      assert.equal(logs.filter((l) => l.level === 'error').length, 0);
    },
    { workerUrl: new URL('./fixtures/throwing-worker.ts', import.meta.url) },
  );
});

test('a missing worker file is noticed without throwing', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl };
  await withTelemetry(
    env,
    async (t, { logs }) => {
      t.recorder.startSpan('x').end();
      await t.flush(3000);
      await until('worker dead', () => t.state === 'dead', 10000, 20);
      assert.equal(logs.filter((l) => l.level === 'error').length, 1);
    },
    { workerUrl: new URL('./fixtures/does-not-exist.mjs', import.meta.url) },
  );
});

test('shutdown: idempotent, flushes, later spans are ignored', async () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl };
  const { log } = collectLogs();
  const t = startTelemetry({ env, log });
  const s = t.recorder.startSpan('at-exit');
  s.end();
  const p1 = t.shutdown(15000);
  const p2 = t.shutdown(15000);
  assert.equal(p1, p2);
  await p1;
  assert.equal(t.state, 'closed');
  await rcv.waitFor(() => tracesOf(s.context.traceId).length >= 1, 5000);
  assert.doesNotThrow(() => t.recorder.startSpan('late').end());
  await t.flush(100);
  // shutdown(0): immediate, quiet
  const now = startTelemetry({ env, log });
  now.recorder.startSpan('dropped').end();
  now.warmUp();
  await until('worker ready', () => now.state === 'ready', 15000, 20);
  const n0 = performance.now();
  await now.shutdown(0);
  assert.ok(performance.now() - n0 < 1000);
  assert.equal(now.state, 'closed');
  // shutting down a telemetry that never loaded anything is immediate
  const idle = startTelemetry({ env, log });
  const t0 = performance.now();
  await idle.shutdown();
  assert.ok(performance.now() - t0 < 500);
  assert.equal(idle.state, 'closed');
});

test('spans the SDK drops because its queue is full (OTEL_BSP_MAX_QUEUE_SIZE) are counted in the warnings too', async () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: rcv.httpUrl,
    OTEL_BSP_MAX_QUEUE_SIZE: '10',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
  };
  await withTelemetry(
    env,
    async (t, { logs }) => {
      const root = t.recorder.startSpan('queue');
      for (let i = 0; i < 49; i++) t.recorder.startSpan(`q${i}`, { parent: root.context }).end();
      root.end();
      t.warmUp();
      await t.shutdown(5000);
      const got = tracesOf(root.context.traceId).length;
      const counts = logs
        .filter(
          (l) =>
            l.level === 'warn' &&
            l.msg.startsWith(`telemetry: span export to ${rcv.httpUrl}/v1/traces (http/protobuf) failed: `),
        )
        .map((l) => Number(/; (\d+) spans? dropped$/.exec(l.msg)?.[1]));
      assert.ok(got >= 10 && got < 50, `the receiver got ${got} of 50`);
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        50 - got,
        JSON.stringify(logs),
      );
    },
    { autoStart: false },
  );
});
