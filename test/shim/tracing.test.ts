// TaskTracer without containerd: containerd 2.x's `traceparent` metadata makes
// the RPC span its child with a link to the container's root, and a shim
// started with TRACECONTEXT (W3C or runwasi's JSON map) parents the root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { SpanRecorder, type SpanRecord } from '../../src/telemetry/recorder.js';
import type { Telemetry } from '../../src/telemetry/index.js';
import { TaskTracer } from '../../src/shim/tracing.js';
import { Code, TtrpcError } from '../../src/ttrpc/status.js';
import type { CallContext } from '../../src/ttrpc/types.js';

function harness(env: NodeJS.ProcessEnv) {
  const records: SpanRecord[] = [];
  const recorder = new SpanRecorder((r) => records.push(r), { enabled: true, process: 'shim', pid: 1 });
  const telemetry = { enabled: true, recorder } as unknown as Telemetry;
  const tracer = new TaskTracer(telemetry, env);
  const seen: { traceparent?: string } = {};
  const impl = tracer.wrap(Task, {
    create: async (req: { id: string }) => {
      seen.traceparent = tracer.traceparentFor(req.id, '');
      return { pid: 42 };
    },
    start: async () => ({ pid: 42 }),
    delete: async () => ({ pid: 42, exitStatus: 3 }),
    kill: async () => {
      throw new TtrpcError(Code.NotFound, 'process already finished');
    },
  }) as Record<string, (req: unknown, ctx: CallContext) => Promise<unknown>>;
  const ctx = (method: string, metadata: Record<string, string> = {}): CallContext => ({
    service: 'containerd.task.v2.Task',
    method,
    metadata: new Map(Object.entries(metadata).map(([k, v]) => [k, [v]])),
    signal: new AbortController().signal,
  });
  return { records, impl, ctx, seen };
}

const flush = () => new Promise((r) => setImmediate(r));
const REMOTE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('a traceparent in ttrpc metadata parents the RPC span, linked to the container root', async () => {
  const { records, impl, ctx, seen } = harness({});
  await impl.create!({ id: 'c1' }, ctx('Create'));
  await impl.start!({ id: 'c1' }, ctx('Start', { traceparent: REMOTE }));
  await impl.delete!({ id: 'c1' }, ctx('Delete'));
  await flush();
  const root = records.find((r) => r.name === 'wasmts.container')!;
  const create = records.find((r) => r.name.endsWith('/Create'))!;
  const start = records.find((r) => r.name.endsWith('/Start'))!;
  assert.ok(root && create && start);
  assert.equal(create.parentSpanId, root.spanId);
  assert.equal(start.traceId, '0af7651916cd43dd8448eb211c80319c', 'child of containerd\'s span');
  assert.equal(start.parentSpanId, 'b7ad6b7169203331');
  assert.deepEqual(start.links.map((l) => l.context.spanId), [root.spanId], 'linked to the container root');
  assert.equal(seen.traceparent, `00-${create.traceId}-${create.spanId}-01`, 'the child gets the Create span');
  assert.equal(root.attributes['wasmts.exit_status'], 3);
  assert.equal(start.attributes['rpc.system'], 'ttrpc');
  assert.equal(start.attributes['rpc.method'], 'Start');
  assert.equal(start.attributes['container.id'], 'c1');
});

for (const [form, value] of [
  ['W3C', REMOTE],
  ['JSON map', JSON.stringify({ traceparent: REMOTE })],
] as const) {
  test(`TRACECONTEXT in the shim's environment (${form}) parents the container root`, async () => {
    const { records, impl, ctx } = harness({ TRACECONTEXT: value });
    await impl.create!({ id: 'c2' }, ctx('Create'));
    await impl.delete!({ id: 'c2' }, ctx('Delete'));
    await flush();
    const root = records.find((r) => r.name === 'wasmts.container')!;
    assert.equal(root.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(root.parentSpanId, 'b7ad6b7169203331');
  });
}

test('a failed RPC gets status ERROR, the exception and the gRPC code', async () => {
  const { records, impl, ctx } = harness({});
  await impl.create!({ id: 'c3' }, ctx('Create'));
  await assert.rejects(impl.kill!({ id: 'c3' }, ctx('Kill')), /already finished/);
  const kill = records.find((r) => r.name.endsWith('/Kill'))!;
  assert.equal(kill.status.code, 2);
  assert.equal(kill.attributes['rpc.grpc.status_code'], Code.NotFound);
  assert.ok(kill.events.some((e) => e.name === 'exception'));
});
