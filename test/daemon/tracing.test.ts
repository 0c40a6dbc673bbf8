// TaskTracer without containerd: metadata and environment carriers, the
// conventions' attributes, errors and exit codes, context for the module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { SpanRecorder, type SpanRecord } from '../../src/telemetry/recorder.js';
import { readPropagators } from '../../src/telemetry/propagation.js';
import type { ChildTraceContext, Telemetry } from '../../src/telemetry/index.js';
import { TaskTracer } from '../../src/daemon/task-tracing.js';
import { Code, TtrpcError } from '../../src/ttrpc/status.js';
import type { CallContext } from '../../src/ttrpc/types.js';

type Impl = Record<string, (req: unknown, ctx: CallContext) => Promise<unknown>>;

function harness(
  env: Record<string, string>,
  o: { enabled?: boolean; exitStatus?: number; state?: { status: number; exitStatus: number } } = {},
) {
  const records: SpanRecord[] = [];
  const enabled = o.enabled ?? true;
  const recorder = new SpanRecorder((r) => records.push(r), { enabled, process: 'shim', pid: 1 });
  const observers: ((r: SpanRecord[]) => void)[] = [];
  const telemetry = {
    enabled,
    recorder,
    config: { propagators: readPropagators(env) },
    observeChildSpans: (l: (r: SpanRecord[]) => void) => {
      observers.push(l);
      return () => undefined;
    },
  } as unknown as Telemetry;
  const tracer = new TaskTracer(telemetry, { env, namespace: () => 'ns1', socketPath: () => '/run/containerd/s/abc' });
  const seen: { trace?: ChildTraceContext } = {};
  const impl = tracer.wrap(Task, {
    create: (req: { id: string }) => {
      seen.trace = tracer.traceContextFor(req.id, '');
      if (req.id.startsWith('bad'))
        return Promise.reject(new TtrpcError(Code.InvalidArgument, 'module /x.wasm not found'));
      return Promise.resolve({ pid: 42 });
    },
    start: () => Promise.resolve({ pid: 42 }),
    state: () => Promise.resolve(o.state ?? { status: 2, exitStatus: 0 }),
    wait: () => Promise.resolve({ exitStatus: o.exitStatus ?? 0 }),
    delete: (req: { id: string }) => {
      if (req.id.startsWith('bad'))
        return Promise.reject(new TtrpcError(Code.NotFound, `container ${req.id} not found`));
      return Promise.resolve({ pid: 42, exitStatus: o.exitStatus ?? 0 });
    },
    kill: () => Promise.reject(new TtrpcError(Code.NotFound, 'process already finished')),
    pids: () => Promise.reject(new TtrpcError(Code.Internal, 'boom')),
  }) as unknown as Impl;
  const ctx = (method: string, metadata: Record<string, string> = {}): CallContext => ({
    service: 'containerd.task.v2.Task',
    method,
    metadata: new Map(Object.entries(metadata).map(([k, v]) => [k, [v]])),
    signal: new AbortController().signal,
  });
  const childSpans = (r: SpanRecord[]) => observers.forEach((l) => l(r));
  return { records, impl, ctx, seen, childSpans };
}

const flush = () => new Promise((r) => setImmediate(r));
const REMOTE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const by = (records: SpanRecord[], suffix: string) => records.find((r) => r.name.endsWith(suffix))!;

test('rpc.* per semantic conventions 1.45: rpc.system.name, fully qualified rpc.method, rpc.status_code, server.address; no process.pid', async () => {
  const { records, impl, ctx } = harness({});
  await impl.create({ id: 'c1' }, ctx('Create'));
  await impl.start({ id: 'c1' }, ctx('Start'));
  await impl.delete({ id: 'c1' }, ctx('Delete'));
  await flush();
  const start = by(records, '/Start');
  assert.equal(start.kind, 'server');
  assert.deepEqual(
    { ...start.attributes },
    {
      'rpc.system.name': 'ttrpc',
      'rpc.method': 'containerd.task.v2.Task/Start',
      'rpc.status_code': 'OK',
      'server.address': '/run/containerd/s/abc',
      'network.transport': 'unix',
      'container.id': 'c1',
      'wasmts.task.pid': 42,
    },
  );
  for (const r of records)
    assert.equal(r.attributes['process.pid'], undefined, `${r.name} has no process.pid (the resource's is the shim's)`);
  const root = by(records, 'wasmts.container');
  assert.equal(root.attributes['container.runtime.name'], 'containerd');
  assert.equal(root.attributes['wasmts.namespace'], 'ns1');
  assert.equal(root.attributes['process.exit.code'], 0);
  assert.equal(root.status.code, 0);
});

test('a traceparent/tracestate in ttrpc metadata parents the RPC span, linked to the container root', async () => {
  const { records, impl, ctx, seen } = harness({});
  await impl.create({ id: 'c1' }, ctx('Create'));
  await impl.start({ id: 'c1' }, ctx('Start', { traceparent: REMOTE, tracestate: 'k=v' }));
  await impl.delete({ id: 'c1' }, ctx('Delete'));
  await flush();
  const root = by(records, 'wasmts.container');
  const create = by(records, '/Create');
  const start = by(records, '/Start');
  assert.equal(create.parentSpanId, root.spanId);
  assert.equal(start.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(start.parentSpanId, 'b7ad6b7169203331');
  assert.equal(start.traceState, 'k=v');
  assert.deepEqual(
    start.links.map((l) => l.context.spanId),
    [root.spanId],
  );
  const tp = `00-${create.traceId}-${create.spanId}-01`;
  assert.deepEqual(seen.trace, { env: { TRACEPARENT: tp, TRACECONTEXT: tp }, recordUnder: { traceparent: tp } });
});

for (const [form, env] of [
  ['TRACECONTEXT, W3C', { TRACECONTEXT: REMOTE }],
  [
    'TRACECONTEXT, JSON map with tracestate',
    { TRACECONTEXT: JSON.stringify({ traceparent: REMOTE, tracestate: 'ro=1' }) },
  ],
  [
    'TRACEPARENT + TRACESTATE',
    {
      TRACEPARENT: REMOTE,
      TRACESTATE: 'ro=1',
      TRACECONTEXT: '00-11111111111111111111111111111111-2222222222222222-01',
    },
  ],
] as const) {
  test(`the shim's environment (${form}) parents the container root; tracestate carried to the module`, async () => {
    const { records, impl, ctx, seen } = harness({ ...env, BAGGAGE: 'tenant=a' });
    await impl.create({ id: 'c2' }, ctx('Create'));
    await impl.delete({ id: 'c2' }, ctx('Delete'));
    await flush();
    const root = by(records, 'wasmts.container');
    assert.equal(root.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(root.parentSpanId, 'b7ad6b7169203331');
    const withState = form !== 'TRACECONTEXT, W3C';
    assert.equal(seen.trace?.env.TRACESTATE, withState ? 'ro=1' : undefined);
    assert.equal(seen.trace?.env.BAGGAGE, 'tenant=a');
  });
}

test('export off (OTEL_SDK_DISABLED): no spans, but the module still gets the incoming context', async () => {
  const { records, impl, ctx, seen } = harness({ TRACEPARENT: REMOTE, TRACESTATE: 'ro=1' }, { enabled: false });
  await impl.create({ id: 'c4' }, ctx('Create'));
  await flush();
  assert.equal(records.length, 0);
  assert.deepEqual(seen.trace, { env: { TRACEPARENT: REMOTE, TRACECONTEXT: REMOTE, TRACESTATE: 'ro=1' } });
});

test('OTEL_PROPAGATORS=none: nothing extracted, nothing injected', async () => {
  const { records, impl, ctx, seen } = harness({ OTEL_PROPAGATORS: 'none', TRACEPARENT: REMOTE });
  await impl.create({ id: 'c5' }, ctx('Create', { traceparent: REMOTE }));
  await impl.delete({ id: 'c5' }, ctx('Delete'));
  await flush();
  const root = by(records, 'wasmts.container');
  assert.notEqual(root.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(by(records, '/Create').parentSpanId, root.spanId);
  assert.deepEqual(seen.trace?.env, {});
  assert.ok(seen.trace?.recordUnder, 'the child still records its spans');
});

test('non-zero exit: root ERROR with process.exit.code and error.type (the trap kind the child reported, else the code)', async () => {
  for (const [runErrorType, want] of [
    [undefined, '3'],
    ['unreachable', 'unreachable'],
  ] as const) {
    const { records, impl, ctx, childSpans } = harness({}, { exitStatus: runErrorType ? 134 : 3 });
    await impl.create({ id: 'c6' }, ctx('Create'));
    const create = by(records, '/Create');
    if (runErrorType)
      childSpans([
        {
          name: 'wasm.run',
          parentSpanId: create.spanId,
          attributes: { 'error.type': runErrorType },
        } as unknown as SpanRecord,
      ]);
    await impl.wait({ id: 'c6' }, ctx('Wait'));
    await impl.delete({ id: 'c6' }, ctx('Delete'));
    await flush();
    const root = by(records, 'wasmts.container');
    assert.equal(root.status.code, 2);
    assert.equal(root.attributes['process.exit.code'], runErrorType ? 134 : 3);
    assert.equal(root.attributes['error.type'], want);
    assert.equal(by(records, '/Wait').attributes['process.exit.code'], runErrorType ? 134 : 3);
    assert.equal(by(records, '/Wait').status.code, 0, 'Wait itself succeeded');
  }
});

test('no exit code before the process has exited: State of a running task has none, of a stopped one has it', async () => {
  const running = harness({});
  await running.impl.create({ id: 'c7' }, running.ctx('Create'));
  await running.impl.state({ id: 'c7' }, running.ctx('State'));
  assert.equal(by(running.records, '/State').attributes['process.exit.code'], undefined);
  const stopped = harness({}, { state: { status: 3, exitStatus: 7 } });
  await stopped.impl.create({ id: 'c7' }, stopped.ctx('Create'));
  await stopped.impl.state({ id: 'c7' }, stopped.ctx('State'));
  assert.equal(by(stopped.records, '/State').attributes['process.exit.code'], 7);
});

test('a failed Create fails the container; the NotFound Delete after it is a normal answer; INTERNAL is an error', async () => {
  const { records, impl, ctx } = harness({});
  await assert.rejects(impl.create({ id: 'bad1', bundle: '/nonexistent' }, ctx('Create')), /not found/);
  await assert.rejects(impl.delete({ id: 'bad1' }, ctx('Delete')), /not found/);
  await assert.rejects(impl.pids({ id: 'bad1' }, ctx('Pids')), /boom/);
  await flush();
  const root = by(records, 'wasmts.container');
  assert.equal(root.status.code, 2);
  assert.equal(root.attributes['error.type'], 'INVALID_ARGUMENT');
  assert.equal(root.attributes['process.exit.code'], undefined, 'it never ran');
  const create = by(records, '/Create');
  assert.equal(create.attributes['rpc.status_code'], 'INVALID_ARGUMENT');
  assert.equal(create.status.code, 0, 'INVALID_ARGUMENT is an answer, not a server error (gRPC conventions)');
  const del = by(records, '/Delete');
  assert.equal(del.attributes['rpc.status_code'], 'NOT_FOUND');
  assert.equal(del.status.code, 0);
  assert.equal(del.attributes['error.type'], undefined);
  assert.equal(del.traceId, root.traceId, "still in the container's trace");
  const pids = by(records, '/Pids');
  assert.equal(pids.status.code, 2);
  assert.equal(pids.attributes['error.type'], 'INTERNAL');
  assert.ok(pids.events.some((e) => e.name === 'exception'));
});

test('a Kill answered NotFound (already finished) is not an error', async () => {
  const { records, impl, ctx } = harness({});
  await impl.create({ id: 'c3' }, ctx('Create'));
  await assert.rejects(impl.kill({ id: 'c3' }, ctx('Kill')), /already finished/);
  const kill = by(records, '/Kill');
  assert.equal(kill.status.code, 0);
  assert.equal(kill.attributes['rpc.status_code'], 'NOT_FOUND');
});

test('many containers at once keep their own roots', async () => {
  const { records, impl, ctx } = harness({});
  const ids = Array.from({ length: 20 }, (_, i) => `m${i}`);
  await Promise.all(ids.map((id) => impl.create({ id }, ctx('Create'))));
  await Promise.all(ids.map((id) => impl.start({ id }, ctx('Start'))));
  await Promise.all(ids.map((id) => impl.delete({ id }, ctx('Delete'))));
  await flush();
  for (const id of ids) {
    const mine = records.filter((r) => r.attributes['container.id'] === id);
    const root = mine.find((r) => r.name === 'wasmts.container')!;
    assert.equal(mine.length, 4);
    for (const r of mine) assert.equal(r.traceId, root.traceId, `${id} ${r.name}`);
  }
  assert.equal(new Set(records.map((r) => r.traceId)).size, ids.length);
});
