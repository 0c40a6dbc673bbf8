// Context propagation end to end, through containerd's environment (the one the
// shims inherit): one private containerd per carrier setting, one container
// each (a shared incoming traceparent puts all of a containerd's containers in
// one trace).
//   carriers   TRACEPARENT + TRACESTATE + BAGGAGE, OTEL_PROPAGATORS with an unsupported b3
//   runwasi    TRACECONTEXT as runwasi's JSON map, tracestate included
//   none       OTEL_PROPAGATORS=none (and a TRACEPARENT that must be ignored)
//   off        OTEL_SDK_DISABLED=true: no export, the context still reaches the module
//   noexport   OTEL_TRACES_EXPORTER=none, TRACECONTEXT plain: likewise
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { sleep, type Suite, type TestImage } from '../harness/index.js';
import {
  checkLifecycleTrace,
  DEFAULT_SERVICE_NAME,
  describeSpans,
  LIFECYCLE,
  prepareImage,
  rpc,
  runTraced,
  settledLeftovers,
  startTracedContainerds,
  waitShimGone,
  withContainers,
} from './helpers.js';

const TRACE = {
  carriers: '0af7651916cd43dd8448eb211c80319c',
  runwasi: '1bf7651916cd43dd8448eb211c80319c',
  none: '2cf7651916cd43dd8448eb211c80319c',
  off: '3df7651916cd43dd8448eb211c80319c',
  noexport: '4ef7651916cd43dd8448eb211c80319c',
};
const PARENT = 'b7ad6b7169203331';
const tp = (traceId: string): string => `00-${traceId}-${PARENT}-01`;

let img: TestImage;
let rx: OtlpReceiver;
/** What off and noexport point at: must never get a request. */
let rxOff: OtlpReceiver;
const E: Record<keyof typeof TRACE, Suite> = {} as never;

before(async () => {
  img = await prepareImage('propagation');
  [rx, rxOff] = await Promise.all([
    startOtlpReceiver({ httpPort: 0, grpcPort: null }),
    startOtlpReceiver({ httpPort: 0, grpcPort: null }),
  ]);
  const envs: [keyof typeof TRACE, Record<string, string>][] = [
    [
      'carriers',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl,
        OTEL_PROPAGATORS: 'tracecontext,baggage,b3',
        TRACEPARENT: tp(TRACE.carriers),
        TRACESTATE: 'vendor=abc,other=1',
        BAGGAGE: 'tenant=t1',
      },
    ],
    [
      'runwasi',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl,
        TRACECONTEXT: JSON.stringify({ traceparent: tp(TRACE.runwasi), tracestate: 'json=1' }),
      },
    ],
    [
      'none',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl,
        OTEL_PROPAGATORS: 'none',
        TRACEPARENT: tp(TRACE.none),
        BAGGAGE: 'x=1',
      },
    ],
    [
      'off',
      {
        OTEL_SDK_DISABLED: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: rxOff.httpUrl,
        TRACEPARENT: tp(TRACE.off),
        TRACESTATE: 'd=1',
        BAGGAGE: 'b=2',
      },
    ],
    [
      'noexport',
      { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: rxOff.httpUrl, TRACECONTEXT: tp(TRACE.noexport) },
    ],
  ];
  await startTracedContainerds('prop', envs, img, E);
});

after(async () => {
  await Promise.all(Object.values(E).map((e) => e.teardown()));
  await Promise.all([rx?.close(), rxOff?.close()]);
  img?.dispose();
});

function withLogs(e: () => Suite, body: (t: TestContext) => Promise<void>) {
  return withContainers(
    e,
    (env, ids) => ids.map((id) => `\n--- ${env.name}: containerd log for ${id} ---\n${env.logFor(id)}\n`).join(''),
    body,
  );
}

/** The module's environment (`probe env`), as a map of the trace carriers. */
function carriersIn(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(TRACEPARENT|TRACECONTEXT|TRACESTATE|BAGGAGE)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2]!;
  }
  return out;
}

test(
  "TRACEPARENT/TRACESTATE/BAGGAGE in the shim's environment: the container joins that trace, tracestate is carried on every span, the module gets TRACEPARENT and TRACECONTEXT (Create's), TRACESTATE and BAGGAGE; b3 is warned about and ignored",
  { timeout: 60_000 },
  withLogs(
    () => E.carriers,
    async () => {
      const { r, id, spans } = await runTraced(E.carriers, rx, 'env', ['/probe.wasm', 'env'], {
        code: 0,
        names: [...LIFECYCLE, 'Shutdown'],
      });
      const t = checkLifecycleTrace(rx.spans(), id, {
        serviceName: DEFAULT_SERVICE_NAME,
        exitStatus: 0,
        parent: PARENT,
      });
      const ctx = describeSpans(spans);
      assert.equal(t.root.traceId, TRACE.carriers, ctx);
      for (const s of spans) assert.equal(s.traceState, 'vendor=abc,other=1', `${s.name} tracestate\n${ctx}`);
      const createTp = `00-${TRACE.carriers}-${t.create.spanId}-01`;
      assert.deepEqual(
        carriersIn(r.stdout),
        { TRACEPARENT: createTp, TRACECONTEXT: createTp, TRACESTATE: 'vendor=abc,other=1', BAGGAGE: 'tenant=t1' },
        r.stdout,
      );
      assert.match(E.carriers.c.log(), /OTEL_PROPAGATORS: b3 not supported; ignored/);
    },
  ),
);

test(
  "runwasi's TRACECONTEXT JSON map: parent and tracestate taken from it, both written back for the module",
  { timeout: 60_000 },
  withLogs(
    () => E.runwasi,
    async () => {
      const { r, id, spans } = await runTraced(E.runwasi, rx, 'env', ['/probe.wasm', 'env'], {
        code: 0,
        names: LIFECYCLE,
      });
      const t = checkLifecycleTrace(rx.spans(), id, {
        serviceName: DEFAULT_SERVICE_NAME,
        exitStatus: 0,
        parent: PARENT,
      });
      assert.equal(t.root.traceId, TRACE.runwasi, describeSpans(spans));
      assert.equal(t.root.traceState, 'json=1');
      const createTp = `00-${TRACE.runwasi}-${t.create.spanId}-01`;
      assert.deepEqual(
        carriersIn(r.stdout),
        { TRACEPARENT: createTp, TRACECONTEXT: createTp, TRACESTATE: 'json=1' },
        r.stdout,
      );
    },
  ),
);

test(
  'OTEL_PROPAGATORS=none: the TRACEPARENT is not extracted (a new trace), nothing is injected into the module, spans are still exported',
  { timeout: 60_000 },
  withLogs(
    () => E.none,
    async () => {
      const { r, id, spans } = await runTraced(E.none, rx, 'env', ['/probe.wasm', 'env'], {
        code: 0,
        names: LIFECYCLE,
      });
      const t = checkLifecycleTrace(rx.spans(), id, { serviceName: DEFAULT_SERVICE_NAME, exitStatus: 0 });
      assert.notEqual(t.root.traceId, TRACE.none, describeSpans(spans));
      assert.equal(t.root.parentSpanId, '');
      assert.deepEqual(carriersIn(r.stdout), {}, r.stdout);
      assert.equal(rpc(spans, 'Create')!.traceState, '');
    },
  ),
);

for (const [name, what, want] of [
  [
    'off',
    'OTEL_SDK_DISABLED=true',
    { TRACEPARENT: tp(TRACE.off), TRACECONTEXT: tp(TRACE.off), TRACESTATE: 'd=1', BAGGAGE: 'b=2' },
  ],
  ['noexport', 'OTEL_TRACES_EXPORTER=none', { TRACEPARENT: tp(TRACE.noexport), TRACECONTEXT: tp(TRACE.noexport) }],
] as const) {
  test(
    `${what}: nothing is exported, but the module still gets the incoming context (propagation is not the SDK's)`,
    { timeout: 60_000 },
    withLogs(
      () => E[name],
      async () => {
        const e = E[name];
        const id = e.id('env');
        const r = await e.run(['/probe.wasm', 'env'], { id });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(carriersIn(r.stdout), want, r.stdout);
        await waitShimGone(e, id, 3_000, r.endedAt);
        await sleep(500);
        assert.deepEqual({ ...rxOff.requests }, { http: 0, grpc: 0 }, `${what}: the receiver got export requests`);
      },
    ),
  );
}

test('no shim or Wasm child of this suite is left', { timeout: 30_000 }, async () => {
  assert.deepEqual(await settledLeftovers(Object.values(E)), []);
});
