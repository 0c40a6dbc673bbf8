// Exporter configuration through containerd's environment, end to end: one
// private containerd per environment, all exporting to one receiver (HTTP and
// gRPC), plus a decoy receiver that the generic variables point at whenever a
// per-signal variable should win.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { e2e, type Suite, type TestImage } from '../harness/index.js';
import {
  checkLifecycleTrace,
  expectedTraceparent,
  LIFECYCLE,
  prepareImage,
  runTraced,
  settledLeftovers,
  startTracedContainerd,
} from './helpers.js';

const CUSTOM_SERVICE = 'wasmts-tracing-e2e';

let rx: OtlpReceiver;
let decoy: OtlpReceiver;
let img: TestImage;
/** grpc to the receiver's gRPC port, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES set. */
let grpc: Suite;
/** generic: http/protobuf to the decoy; per-signal: grpc to the receiver. */
let signalGrpc: Suite;
/** generic: grpc to the decoy; per-signal: http/protobuf to the receiver's full /v1/traces URL. */
let signalHttp: Suite;
const envs = (): Suite[] => [grpc, signalGrpc, signalHttp].filter(Boolean);

before(async () => {
  img = await prepareImage('exporter-config');
  [rx, decoy] = await Promise.all([
    startOtlpReceiver({ httpPort: 0, grpcPort: 0 }),
    startOtlpReceiver({ httpPort: 0, grpcPort: 0 }),
  ]);
  const started = await Promise.allSettled([
    startTracedContainerd(
      'grpc',
      {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.grpcUrl,
        OTEL_SERVICE_NAME: CUSTOM_SERVICE,
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=tracing-e2e,service.name=overridden-by-OTEL_SERVICE_NAME',
      },
      img,
    ),
    startTracedContainerd(
      'sig-grpc',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: decoy.httpUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: rx.grpcUrl,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
      },
      img,
    ),
    startTracedContainerd(
      'sig-http',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: decoy.grpcUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        // Used as is: were /v1/traces appended again, the receiver would answer 404.
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${rx.httpUrl}/v1/traces`,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      },
      img,
    ),
  ]);
  [grpc, signalGrpc, signalHttp] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined!));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
});

after(async () => {
  await Promise.all(envs().map((e) => e.teardown()));
  await Promise.all([rx?.close(), decoy?.close()]);
  img?.dispose();
});

/** Runs body against env(); its containers are cleaned up after it, and on failure their containerd log lines are printed. */
const withLogs = (env: () => Suite, body: (t: TestContext, e: Suite) => Promise<void>) =>
  e2e(env, [], (t, e) => body(t, e));

test(
  "grpc: OTEL_EXPORTER_OTLP_PROTOCOL=grpc to the receiver's gRPC port delivers the whole trace; OTEL_SERVICE_NAME is the service.name",
  { timeout: 60_000 },
  withLogs(
    () => grpc,
    async (_t, e) => {
      const httpBefore = rx.requests.http;
      const { r, id } = await runTraced(e, rx, 'grpc', ['/probe.wasm', 'trace'], {
        code: 0,
        names: [...LIFECYCLE, 'Shutdown'],
      });
      // service.name: OTEL_SERVICE_NAME on the shim's and the child's spans (it beats service.name in OTEL_RESOURCE_ATTRIBUTES)
      const t = checkLifecycleTrace(rx.spans(), id, {
        serviceName: CUSTOM_SERVICE,
        exitStatus: 0,
        module: img.probe,
        protocol: 'grpc',
      });
      assert.equal(r.stdout.trim(), expectedTraceparent(t));
      // OTEL_RESOURCE_ATTRIBUTES reach both processes' resources
      for (const s of [t.root, ...t.childSpans])
        assert.equal(s.resource['deployment.environment'], 'tracing-e2e', `${s.name} resource`);
      assert.ok(rx.requests.grpc > 0);
      assert.equal(rx.requests.http, httpBefore, 'nothing went over HTTP from the grpc shim');
    },
  ),
);

test(
  'per-signal endpoint and protocol win: TRACES_ENDPOINT + TRACES_PROTOCOL=grpc over a generic http/protobuf endpoint',
  { timeout: 60_000 },
  withLogs(
    () => signalGrpc,
    async (_t, e) => {
      const { id } = await runTraced(e, rx, 'sig-grpc', ['/probe.wasm', 'exit', '42'], { code: 42, names: LIFECYCLE });
      checkLifecycleTrace(rx.spans(), id, { serviceName: 'containerd-shim-wasmts', exitStatus: 42, protocol: 'grpc' });
      assert.equal(decoy.requests.http + decoy.requests.grpc, 0, 'the generic endpoint got requests');
    },
  ),
);

test(
  'per-signal endpoint is used as is and TRACES_PROTOCOL=http/protobuf beats OTEL_EXPORTER_OTLP_PROTOCOL=grpc',
  { timeout: 60_000 },
  withLogs(
    () => signalHttp,
    async (_t, e) => {
      const { id } = await runTraced(e, rx, 'sig-http', ['/hello.wasm'], { code: 0, names: LIFECYCLE });
      checkLifecycleTrace(rx.spans(), id, { serviceName: 'containerd-shim-wasmts', exitStatus: 0, protocol: 'http' });
      assert.equal(decoy.requests.http + decoy.requests.grpc, 0, 'the generic endpoint got requests');
    },
  ),
);

test('no shim or Wasm child is left, and the decoy never got a request', { timeout: 30_000 }, async () => {
  assert.deepEqual(await settledLeftovers(envs()), []);
  assert.deepEqual({ ...decoy.requests }, { http: 0, grpc: 0 });
  assert.equal(decoy.spans().length, 0);
});
