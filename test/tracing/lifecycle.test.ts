// One private containerd whose environment carries only
// OTEL_EXPORTER_OTLP_ENDPOINT (http/protobuf to our receiver, every other
// setting at its default, OTEL_BSP_SCHEDULE_DELAY=5000 included), and
// containers run through it with `ctr run`: what arrives at the receiver.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { e2e, PLATFORM, RUNTIME, sleep, type Suite, type TestImage } from '../harness/index.js';
import {
  checkLifecycleTrace,
  containerTrace,
  DEFAULT_SERVICE_NAME,
  describeSpans,
  endMs,
  expectedTraceparent,
  LIFECYCLE,
  ms,
  prepareImage,
  rootOf,
  rpc,
  rpcs,
  runTraced,
  settledLeftovers,
  startMs,
  startTracedContainerd,
  waitForContainerTrace,
  waitShimGone,
} from './helpers.js';

let rx: OtlpReceiver;
let img: TestImage;
let env: Suite;

before(async () => {
  img = await prepareImage('lifecycle');
  rx = await startOtlpReceiver({ httpPort: 0, grpcPort: null });
  env = await startTracedContainerd('lifecycle', { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl }, img);
});

after(async () => {
  await env?.teardown();
  await rx?.close();
  img?.dispose();
});

/** Runs body; its containers are cleaned up after it, and on failure their containerd log lines are printed. */
const withLogs = (body: (t: TestContext) => Promise<void>) =>
  e2e(
    () => env,
    [],
    (t) => body(t),
  );

test(
  "a container gives one trace: RPC spans under wasmts.container, child spans under Create, TRACECONTEXT is Create's traceparent",
  { timeout: 60_000 },
  withLogs(async () => {
    const { r, id, spans } = await runTraced(env, rx, 'shape', ['/probe.wasm', 'trace'], {
      code: 0,
      names: [...LIFECYCLE, 'Shutdown'],
    });
    const t = checkLifecycleTrace(rx.spans(), id, {
      serviceName: DEFAULT_SERVICE_NAME,
      exitStatus: 0,
      module: img.probe,
      protocol: 'http',
    });

    // The module saw a W3C traceparent of this very trace, naming the Create span (the one that forked it).
    const printed = r.stdout.trim();
    assert.match(printed, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, `the module printed ${JSON.stringify(r.stdout)}`);
    assert.equal(printed, expectedTraceparent(t), describeSpans(spans));
    // ...and the child's own spans hang under exactly that span id.
    const [, traceId, parentId] = printed.split('-');
    assert.equal(traceId, t.root.traceId);
    for (const s of t.childSpans)
      assert.equal(s.parentSpanId, parentId, `${s.name} is parented on the TRACECONTEXT span`);

    // Connect / State / Shutdown made by containerd around the container belong to the same trace, under the root.
    for (const s of spans.filter((s) => s.name.startsWith('containerd.task.')))
      assert.equal(s.parentSpanId, t.root.spanId, s.name);
    assert.ok(rpc(spans, 'Shutdown'), 'a Shutdown span');

    // Each process reports itself: the shim's spans carry the shim's pid, the child's the child's.
    assert.notEqual(t.shimPid, t.childPid);
    assert.deepEqual(new Set(spans.map((s) => s.resource['wasmts.process'])), new Set(['shim', 'child']));
  }),
);

test(
  'exit status 42: process.exit.code on Wait, Delete, wasm.run and the root, which with wasm.run is ERROR with error.type 42; a second container gets its own trace',
  { timeout: 60_000 },
  withLogs(async () => {
    const { id } = await runTraced(env, rx, 'exit42', ['/probe.wasm', 'exit', '42'], { code: 42, names: LIFECYCLE });
    const t = checkLifecycleTrace(rx.spans(), id, {
      serviceName: DEFAULT_SERVICE_NAME,
      exitStatus: 42,
      module: img.probe,
    });
    // Traces of different containers are distinct.
    const others = rx.spans().filter((s) => s.name === 'wasmts.container' && s.attributes['container.id'] !== id);
    assert.ok(others.length > 0 || env.ids.length === 1, 'an earlier container left a trace');
    for (const o of others)
      assert.notEqual(
        o.traceId,
        t.root.traceId,
        `container ${String(o.attributes['container.id'])} shares a trace with ${id}`,
      );
  }),
);

test(
  'a failed Create (ctr run of a missing module): the container root is ERROR with error.type, the Create span records the answer (INVALID_ARGUMENT, not a server error) and its exception event; the NotFound Delete after it is no error',
  { timeout: 60_000 },
  withLogs(async () => {
    // ctr reports the failed Create with exit code 1
    const { id, spans } = await runTraced(env, rx, 'missing', ['/no-such-module.wasm'], {
      code: 1,
      names: ['wasmts.container', 'Create', 'Delete'],
    });
    const root = rootOf(spans, id)!;
    const create = rpc(spans, 'Create')!;
    const ctx = describeSpans(spans);
    assert.equal(create.parentSpanId, root.spanId, ctx);
    assert.equal(create.attributes['rpc.status_code'], 'INVALID_ARGUMENT', ctx);
    assert.equal(
      create.status.code,
      0,
      `Create status: INVALID_ARGUMENT is the server's answer, not its error (gRPC conventions)\n${ctx}`,
    );
    const ev = create.events.find((e) => e.name === 'exception');
    assert.ok(
      ev,
      `Create has an exception event: ${JSON.stringify(create.events, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
    );
    assert.match(
      String(ev.attributes['exception.message']),
      /no-such-module|not found|no such file|ENOENT/i,
      JSON.stringify(ev.attributes),
    );
    assert.ok(ev.attributes['exception.type'] !== undefined || ev.attributes['exception.message'] !== undefined);
    // The container never ran: its root records the failure too and nothing ran.
    assert.equal(root.status.code, 2, `root status after a failed Create\n${ctx}`);
    assert.equal(root.attributes['error.type'], 'INVALID_ARGUMENT', ctx);
    assert.equal(root.attributes['process.exit.code'], undefined, `it never ran\n${ctx}`);
    // containerd deletes what it could not create: NOT_FOUND, a normal answer.
    const del = rpc(spans, 'Delete');
    assert.ok(del, `containerd sent Delete after the failed Create\n${ctx}`);
    assert.equal(del.attributes['rpc.status_code'], 'NOT_FOUND', ctx);
    assert.equal(del.attributes['error.type'], undefined, ctx);
    for (const s of spans.filter((s) => s.name.startsWith('containerd.task.') && s.name !== create.name)) {
      assert.equal(s.status.code, 0, `${s.name} ${String(s.attributes['rpc.status_code'])} is not an error\n${ctx}`);
    }
    assert.equal(spans.filter((s) => s.name === 'wasm.run').length, 0, ctx);
    assert.equal(rpcs(spans, 'Start').length, 0, ctx);
  }),
);

test(
  'a trap: exit 134, the root and wasm.run ERROR with error.type the trap kind (unreachable), the exception on wasm.run',
  { timeout: 60_000 },
  withLogs(async () => {
    const { id, spans } = await runTraced(env, rx, 'trap', ['/probe.wasm', 'trap'], { code: 134, names: LIFECYCLE });
    const t = checkLifecycleTrace(rx.spans(), id, {
      serviceName: DEFAULT_SERVICE_NAME,
      exitStatus: 134,
      errorType: 'unreachable',
    });
    const run = t.childSpans.find((s) => s.name === 'wasm.run')!;
    const ctx = describeSpans(spans);
    assert.match(String(run.attributes['wasm.trap']), /unreachable/, ctx);
    const ev = run.events.find((e) => e.name === 'exception');
    assert.equal(ev?.attributes['exception.type'], 'RuntimeError', ctx);
    assert.match(t.root.status.message, /unreachable/, ctx);
  }),
);

test(
  'the Wait span lasts as long as Wait blocked (a module sleeping 1 s)',
  { timeout: 60_000 },
  withLogs(async () => {
    const { r, id, spans } = await runTraced(env, rx, 'sleep', ['/probe.wasm', 'sleep', '1'], {
      code: 0,
      names: LIFECYCLE,
    });
    assert.equal(r.stdout.trim(), 'slept');
    const t = checkLifecycleTrace(rx.spans(), id, { serviceName: DEFAULT_SERVICE_NAME, exitStatus: 0 });
    const run = t.childSpans.find((s) => s.name === 'wasm.run')!;
    const ctx = describeSpans(spans);
    assert.ok(ms(run) >= 990, `wasm.run lasted ${ms(run).toFixed(1)} ms for a 1 s sleep\n${ctx}`);
    assert.ok(ms(t.wait) >= 950, `Wait lasted ${ms(t.wait).toFixed(1)} ms although the module slept 1 s\n${ctx}`);
    // Wait was answered when the module exited, not before (and not long after).
    assert.ok(
      endMs(t.wait) >= endMs(run) - 5,
      `Wait ended ${(endMs(run) - endMs(t.wait)).toFixed(1)} ms before wasm.run\n${ctx}`,
    );
    assert.ok(
      endMs(t.wait) - endMs(run) < 1000,
      `Wait ended ${(endMs(t.wait) - endMs(run)).toFixed(1)} ms after wasm.run\n${ctx}`,
    );
    // Start does not block: it returns long before the module is done.
    assert.ok(ms(t.start) < 500, `Start lasted ${ms(t.start).toFixed(1)} ms\n${ctx}`);
  }),
);

test(
  'Kill, Pids and State of a running container are spans of its trace too',
  { timeout: 60_000 },
  withLogs(async () => {
    const id = env.id('kill');
    const r = await env.run(['/probe.wasm', 'daemon', '200'], { id, detach: true });
    assert.equal(r.code, 0, r.stderr);
    const ps = await env.c.ctr(['task', 'ps', id]);
    assert.equal(ps.code, 0, ps.stderr);
    await env.c.ctrOk(['task', 'ls']); // State of the running task
    await env.c.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
    // wait for STOPPED, then delete task and container (Delete, then Shutdown)
    await env.waitStatus(id, 'STOPPED', 10_000);
    await env.c.ctrOk(['task', 'delete', id]);
    await env.c.ctrOk(['container', 'delete', id]);
    const { spans } = await waitForContainerTrace(
      rx,
      id,
      ['wasmts.container', 'Create', 'Start', 'Pids', 'Kill', 'State', 'Delete', 'Shutdown', 'wasm.run'],
      10_000,
    );
    const root = rootOf(spans, id)!;
    const ctx = describeSpans(spans);
    for (const m of ['Pids', 'Kill', 'State', 'Delete', 'Shutdown']) {
      for (const s of rpcs(spans, m)) {
        assert.equal(s.parentSpanId, root.spanId, `${m}\n${ctx}`);
        assert.equal(s.attributes['rpc.method'], `containerd.task.v2.Task/${m}`);
        assert.equal(s.attributes['container.id'], id);
      }
    }
    assert.equal(
      Number(rpc(spans, 'Delete')!.attributes['process.exit.code']),
      137,
      `Delete of a SIGKILLed task\n${ctx}`,
    );
    assert.equal(Number(root.attributes['process.exit.code']), 137, ctx);
    // Killed: the root and wasm.run (ended by the daemon for the dead child) are ERROR, error.type the signal.
    assert.equal(root.status.code, 2, ctx);
    assert.equal(root.attributes['error.type'], 'SIGKILL', ctx);
    const run = spans.find((s) => s.name === 'wasm.run');
    assert.ok(run, `a killed container still has its wasm.run span\n${ctx}`);
    assert.equal(run.status.code, 2, ctx);
    assert.equal(run.attributes['process.exit.code'], 137, ctx);
    assert.equal(run.attributes['error.type'], 'SIGKILL', ctx);
    assert.equal(run.resource['wasmts.process'], 'child', ctx);
    assert.ok(run.endTimeUnixNano >= rpc(spans, 'Kill')!.startTimeUnixNano, `wasm.run ends after the Kill\n${ctx}`);
    // Before the exit, nothing claims an exit code: the State spans of the running task have none.
    const kill = rpc(spans, 'Kill')!;
    const runningStates = rpcs(spans, 'State').filter((s) => s.endTimeUnixNano < kill.startTimeUnixNano);
    assert.ok(runningStates.length > 0, `a State of the running task\n${ctx}`);
    for (const s of runningStates)
      assert.equal(s.attributes['process.exit.code'], undefined, `${s.name} of a running task\n${ctx}`);
    const stoppedStates = rpcs(spans, 'State').filter((s) => s.startTimeUnixNano > run.endTimeUnixNano);
    for (const s of stoppedStates)
      assert.equal(s.attributes['process.exit.code'], 137, `${s.name} of the stopped task\n${ctx}`);
  }),
);

const waitStatus = (id: string, status: string) => env.waitStatus(id, status, 10_000);

test(
  "a pod: its sandbox and two containers started at once in one daemon keep their own traces, exit codes and errors; container.image.name from CRI's annotation",
  { timeout: 90_000 },
  withLogs(async () => {
    const [sandbox, app, killed] = [env.id('pod-sb'), env.id('pod-exit3'), env.id('pod-killed')];
    const pod = ['--annotation', `io.kubernetes.cri.sandbox-id=${sandbox}`];
    const member = [...pod, '--annotation', 'io.kubernetes.cri.container-type=container'];
    const run = (id: string, flags: string[], args: string[]) =>
      env.c.ctrOk(['run', '-d', '--runtime', RUNTIME, '--platform', PLATFORM, ...flags, img.ref, id, ...args]);
    await run(sandbox, [...pod, '--annotation', 'io.kubernetes.cri.container-type=sandbox'], ['/probe.wasm']);
    await waitStatus(sandbox, 'RUNNING');
    await Promise.all([
      run(
        app,
        [...member, '--annotation', 'io.kubernetes.cri.image-name=registry.example/team/app:1.2'],
        ['/probe.wasm', 'exit', '3'],
      ),
      run(killed, member, ['/probe.wasm', 'daemon', '100']),
    ]);
    await waitStatus(killed, 'RUNNING');
    await env.c.ctrOk(['task', 'kill', '-s', 'SIGKILL', killed]);
    for (const id of [app, killed]) await waitStatus(id, 'STOPPED');
    await env.c.ctrOk(['task', 'kill', '-s', 'SIGKILL', sandbox]);
    await waitStatus(sandbox, 'STOPPED');
    for (const id of [app, killed, sandbox]) {
      await env.c.ctrOk(['task', 'delete', id]);
      await env.c.ctrOk(['container', 'delete', id]);
    }
    const traces = new Map<string, ReturnType<typeof rx.spans>>();
    for (const id of [app, killed, sandbox])
      traces.set(
        id,
        (await waitForContainerTrace(rx, id, ['wasmts.container', 'Create', 'Start', 'Delete', 'wasm.run'], 10_000))
          .spans,
      );
    const all = rx.spans();
    const ctx = [...traces.values()].map(describeSpans).join('\n--\n');
    const roots = [app, killed, sandbox].map((id) => rootOf(all, id)!);
    assert.equal(new Set(roots.map((r) => r.traceId)).size, 3, `one trace per container\n${ctx}`);
    // One daemon served the pod: one resource for all three.
    assert.equal(new Set(roots.map((r) => r.resource['process.pid'])).size, 1, ctx);
    assert.equal(new Set(roots.map((r) => r.resource['service.instance.id'])).size, 1, ctx);
    for (const [id, spans] of traces) {
      for (const s of all.filter((s) => s.attributes['container.id'] === id))
        assert.ok(spans.includes(s), `${s.name} of ${id} is in its trace\n${ctx}`);
      for (const s of spans)
        if (s.attributes['container.id'] !== undefined)
          assert.equal(s.attributes['container.id'], id, `${s.name} in the trace of ${id}\n${ctx}`);
    }
    const [appRoot, killedRoot] = roots;
    assert.equal(appRoot.attributes['container.image.name'], 'registry.example/team/app:1.2', ctx);
    assert.equal(killedRoot.attributes['container.image.name'], undefined, ctx);
    assert.equal(appRoot.attributes['process.exit.code'], 3, ctx);
    assert.equal(appRoot.attributes['error.type'], '3', ctx);
    assert.equal(appRoot.status.code, 2, ctx);
    assert.equal(killedRoot.attributes['process.exit.code'], 137, ctx);
    assert.equal(killedRoot.attributes['error.type'], 'SIGKILL', ctx);
    const killedRun = traces.get(killed)!.find((s) => s.name === 'wasm.run')!;
    assert.equal(killedRun.attributes['error.type'], 'SIGKILL', ctx);
    assert.equal(killedRun.status.code, 2, ctx);
  }),
);

test(
  'spans are flushed when the shim exits: all arrive within 3 s of deletion with the default 5 s batch delay',
  { timeout: 60_000 },
  withLogs(async () => {
    assert.equal(env.env.OTEL_BSP_SCHEDULE_DELAY, undefined, 'this containerd must keep the default batch delay');
    // Short next to the 5 s batch delay, and shorter than the exporter's warm-up (~250 ms after
    // the shim serves): the exporter only loads at shutdown, after containerd removed the bundle.
    const id = env.id('flush');
    const r = await env.run(['/hello.wasm'], { id });
    assert.equal(r.code, 0, r.stderr);
    const { spans, at } = await waitForContainerTrace(rx, id, [...LIFECYCLE, 'Shutdown'], 3_000);
    const afterDelete = at - r.endedAt;
    assert.ok(afterDelete < 3_000, `spans arrived ${afterDelete} ms after deletion`);
    // The batch timer (5 s, started when the first span reached the exporter, which is
    // never before the shim served) cannot have fired yet: this was the exit flush.
    const root = rootOf(spans, id)!;
    assert.ok(
      at < startMs(root) + 5_000,
      `spans arrived ${(at - startMs(root)).toFixed(0)} ms after the container's root span started: could be the batch timer`,
    );
    // The shim is gone (it exits after the flush) or about to go.
    await waitShimGone(env, id, 3_000, r.endedAt);
    // Nothing for this container arrives later: the flush carried the whole trace.
    const count = containerTrace(rx.spans(), id).length;
    await sleep(300);
    assert.equal(containerTrace(rx.spans(), id).length, count);
    checkLifecycleTrace(rx.spans(), id, { serviceName: DEFAULT_SERVICE_NAME, exitStatus: 0 });
  }),
);

test(
  'every one of several containers shorter than the exporter warm-up gets its whole trace (exit flush after the bundle is gone)',
  { timeout: 60_000 },
  withLogs(async () => {
    const runs: { id: string; endedAt: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const id = env.id('brief');
      const r = await env.run(i % 2 ? ['/probe.wasm', 'exit', '42'] : ['/hello.wasm'], { id });
      assert.equal(r.code, i % 2 ? 42 : 0, r.stderr);
      runs.push({ id, endedAt: r.endedAt });
    }
    const complete = (all: ReturnType<OtlpReceiver['spans']>, id: string): boolean => {
      const t = containerTrace(all, id);
      return LIFECYCLE.every((n) => t.some((s) => s.name === n || s.name === `containerd.task.v2.Task/${n}`));
    };
    const last = runs[runs.length - 1].endedAt;
    await rx
      .waitFor((all) => runs.every(({ id }) => complete(all, id)), Math.max(500, last + 3_000 - Date.now()))
      .catch(() => undefined);
    const lost = runs
      .filter(({ id }) => !complete(rx.spans(), id))
      .map(({ id }) => `${id} (${containerTrace(rx.spans(), id).length} spans)`);
    assert.deepEqual(
      lost,
      [],
      `${lost.length} of ${runs.length} short containers' traces incomplete 3 s after the last deletion`,
    );
  }),
);

test('no shim or Wasm child of this suite is left', { timeout: 30_000 }, async () => {
  assert.deepEqual(await settledLeftovers([env]), []);
});
