// A dead port, a port answering garbage and one that never answers: span calls
// stay instant, nothing throws, shutdown is bounded (~2 s), the process exits
// by itself with code 0. Each case runs in its own process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { envWithoutOtel, isObject, parseJsonAs, startBadEndpoints, type BadEndpoints } from '../harness/index.js';
import { type CaptureServer, runFixture, type RunResult, startCaptureServer } from './helpers.js';

let bad: BadEndpoints;
let cap: CaptureServer;
before(async () => {
  bad = await startBadEndpoints();
  cap = await startCaptureServer();
});
after(async () => {
  await bad.close();
  await cap.close();
});

interface RunOutput {
  enabled: boolean;
  state: string;
  workerReadyMs?: number;
  maxCallMs: number;
  maxTickGapMs: number;
  shutdownMs: number;
  totalMs: number;
  uptimeAtEndMs: number;
  logs: { level: string; msg: string }[];
}

const isRunOutput = (v: unknown): v is RunOutput =>
  isObject(v) && typeof v.enabled === 'boolean' && typeof v.state === 'string' && Array.isArray(v.logs);

async function run(env: Record<string, string>, shutdownMs = 2000): Promise<{ r: RunResult; out: RunOutput }> {
  const r = await runFixture(
    'export-run.ts',
    [JSON.stringify({ spans: 50, flushFirstMs: 300, shutdownMs })],
    { ...envWithoutOtel(), ...env },
    [],
    30_000,
  );
  let out: RunOutput;
  try {
    out = parseJsonAs(r.stdout.trim().split('\n').pop() ?? '', isRunOutput, "the fixture's result");
  } catch {
    assert.fail(`no result from the fixture (code ${r.code}, signal ${r.signal}): ${r.stdout}\n${r.stderr}`);
  }
  return { r, out };
}

function checkHealthy(name: string, { r, out }: { r: RunResult; out: RunOutput }, shutdownBoundMs = 2500): void {
  const ctx = `${name}: ${JSON.stringify({ ...out, logs: out.logs.map((l) => `${l.level} ${l.msg}`) })}\nstderr: ${r.stderr}`;
  assert.equal(r.code, 0, ctx);
  assert.equal(r.signal, null, ctx);
  assert.equal(out.enabled, true, ctx);
  assert.ok(out.shutdownMs < shutdownBoundMs, `shutdown took ${out.shutdownMs} ms; ${ctx}`);
  // Blocking on a hung exporter would take its 10 s timeout; a loaded 2-core machine alone delays a call by a few hundred ms.
  assert.ok(out.maxCallMs < 1000, `a span call took ${out.maxCallMs} ms; ${ctx}`);
  // The process exits promptly once shutdown resolved: nothing keeps it alive.
  assert.ok(r.wallMs - out.uptimeAtEndMs < 5000, `exit took ${r.wallMs - out.uptimeAtEndMs} ms after shutdown; ${ctx}`);
  assert.doesNotMatch(r.stderr, /Error|uncaught|HPE_/i, ctx);
  assert.ok(out.logs.filter((l) => l.level !== 'debug').length <= 4, `too chatty; ${ctx}`);
}

async function inBatches<T>(items: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += n) out.push(...(await Promise.all(items.slice(i, i + n).map((f) => f()))));
  return out;
}

test('bad endpoints never harm the process (http/protobuf, grpc, http/json)', async () => {
  const cases: [string, Record<string, string>][] = [];
  for (const protocol of ['http/protobuf', 'grpc']) {
    for (const [what, port] of [
      ['dead', bad.deadPort],
      ['garbage', bad.garbagePort],
      ['hang', bad.hangPort],
    ] as const) {
      cases.push([
        `${protocol} ${what}`,
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_BSP_SCHEDULE_DELAY: '50',
        },
      ]);
    }
  }
  cases.push([
    'http/json garbage',
    { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${bad.garbagePort}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
  ]);
  const results = await inBatches(
    cases.map(([name, env]) => async () => ({ name, res: await run(env) })),
    3,
  );
  for (const { name, res } of results) checkHealthy(name, res);
  // Not one span vanishes silently: the warnings name the endpoint and add up to all 51 (50 + the root).
  for (const [name, env] of cases) {
    const { out } = results.find((x) => x.name === name)!.res;
    const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL;
    const endpoint =
      protocol === 'grpc' ? env.OTEL_EXPORTER_OTLP_ENDPOINT : `${env.OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`;
    const lines = out.logs.filter(
      (l) => l.level === 'warn' && l.msg.startsWith(`telemetry: span export to ${endpoint} (${protocol}) failed: `),
    );
    const total = lines
      .map((l) => Number(/; (\d+) spans? dropped$/.exec(l.msg)?.[1] ?? NaN))
      .reduce((a, b) => a + b, 0);
    assert.equal(total, 51, `${name}: dropped spans reported: ${JSON.stringify(out.logs)}`);
  }
  // The garbage endpoint's HPE_INVALID_CONSTANT is reported as one export failure, not a crash.
  const g = results.find((x) => x.name === 'http/protobuf garbage')!.res.out;
  assert.ok(
    g.logs.some((l) => /failed: .*HPE_INVALID_CONSTANT/.test(l.msg)),
    JSON.stringify(g.logs),
  );
});

test('control: the same fixture against a working endpoint exports everything and exits', async () => {
  const before = cap.requests.length;
  // A generous bound so a slow (loaded) machine still gets the worker loaded before shutdown.
  const res = await run({ OTEL_EXPORTER_OTLP_ENDPOINT: cap.url }, 15_000);
  checkHealthy('ok', res, 15_000);
  assert.ok(cap.requests.length > before, JSON.stringify(res.out.logs));
});
