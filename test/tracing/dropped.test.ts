// Silent loss, end to end: when spans are dropped the shim's log says so, with
// the endpoint and how many. containerd (1.6, 1.7: runtime/v2/shim.go) stops
// reading a shim's log the moment the shim's ttrpc connection closes, so what the
// daemon logs for a container after its Shutdown (a later flush) never reaches
// containerd's log; these containers run long enough for a batch export (every
// 200 ms here) to fail while containerd still reads the log. The exit-time
// report itself is checked in test/telemetry/resilience.test.ts. One private
// containerd per endpoint:
//   dead       nothing listens on the port
//   untrusted  HTTPS with a certificate no CA the shim trusts signed (the wrong-CA case)
//   invalid    an endpoint that is no URL at all: a warning, the container unharmed
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  type BadEndpoints,
  startBadEndpoints,
  startUntrustedTlsEndpoint,
  type Suite,
  type TestImage,
  type UntrustedTlsEndpoint,
} from '../harness/index.js';
import {
  droppedSpanWarnings,
  prepareImage,
  settledLeftovers,
  startTracedContainerds,
  waitShimGone,
  withContainers,
} from './helpers.js';

/** Outlives the exporter's warm-up and load (slow on a loaded machine) and a few 200 ms batches. */
const LONG_ENOUGH = ['/probe.wasm', 'sleep', '4'];
const BATCH = { OTEL_BSP_SCHEDULE_DELAY: '200' };

let img: TestImage;
let bad: BadEndpoints;
let tls: UntrustedTlsEndpoint;
const E: Record<'dead' | 'untrusted' | 'invalid', Suite> = {} as never;

before(async () => {
  img = await prepareImage('dropped');
  [bad, tls] = await Promise.all([startBadEndpoints(), startUntrustedTlsEndpoint()]);
  const envs: [keyof typeof E, Record<string, string>][] = [
    // A refused connection is retried (1 s, 1.5 s, … within the export timeout): a short timeout makes it one attempt.
    ['dead', { OTEL_EXPORTER_OTLP_ENDPOINT: bad.deadUrl, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '500', ...BATCH }],
    ['untrusted', { OTEL_EXPORTER_OTLP_ENDPOINT: tls.url, ...BATCH }],
    ['invalid', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://no such host:4318' }],
  ];
  await startTracedContainerds('drop', envs, img, E);
});

after(async () => {
  await Promise.all(Object.values(E).map((e) => e.teardown()));
  await Promise.all([bad?.close(), tls?.close()]);
  img?.dispose();
});

function withLogs(e: () => Suite, body: (t: TestContext) => Promise<void>) {
  return withContainers(
    e,
    (env) =>
      `\n--- ${env.name}: containerd log ---\n${env.c
        .log()
        .split('\n')
        .filter((l) => /telemetry|span/.test(l))
        .slice(-40)
        .join('\n')}\n`,
    body,
  );
}

/** One container whose spans cannot be delivered: the log names the endpoint, the cause and how many were dropped. */
async function dropsAreLogged(e: Suite, endpoint: string, cause: RegExp): Promise<void> {
  const id = e.id('run');
  const r = await e.run(LONG_ENOUGH, { id });
  assert.equal(r.code, 0, r.stderr);
  await waitShimGone(e, id, 10_000, r.endedAt);
  const { lines, counts } = droppedSpanWarnings(e.c.log(), endpoint);
  assert.ok(lines.length > 0, `no dropped-span warning naming ${endpoint}`);
  assert.ok(
    counts.every((n) => n > 0),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => cause.test(l)),
    `no warning gives the cause ${cause}:\n${lines.join('\n')}`,
  );
  process.stdout.write(`# ${e.name}: ${lines[0]}\n`);
}

test(
  'a dead port: dropped spans are a warning in the shim log with the endpoint, the cause and the count',
  { timeout: 60_000 },
  withLogs(
    () => E.dead,
    async () => {
      await dropsAreLogged(E.dead, `${bad.deadUrl}/v1/traces`, /ECONNREFUSED/);
    },
  ),
);

test(
  'a collector whose certificate is not trusted (wrong CA): the lost spans are logged likewise, naming the certificate problem',
  { timeout: 60_000 },
  withLogs(
    () => E.untrusted,
    async () => {
      await dropsAreLogged(E.untrusted, `${tls.url}/v1/traces`, /certificate/i);
      assert.ok(tls.connections > 0, 'the shim never tried the HTTPS endpoint');
    },
  ),
);

test(
  'an endpoint that is not a URL: a warning in the shim log (not a debug line), the container runs normally',
  { timeout: 60_000 },
  withLogs(
    () => E.invalid,
    async () => {
      const id = E.invalid.id('run');
      const r = await E.invalid.run(['/probe.wasm', 'exit', '3'], { id });
      assert.equal(r.code, 3, r.stderr);
      const log = E.invalid.c.log();
      assert.match(
        log,
        /level=warn msg=".*OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/no such host:4318 is not a valid URL; spans are not exported/,
      );
    },
  ),
);

test('no shim or Wasm child of this suite is left', { timeout: 30_000 }, async () => {
  assert.deepEqual(await settledLeftovers(Object.values(E)), []);
});
