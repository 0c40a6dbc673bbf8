import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { handleViewerRequest } from '../../src/viewer/web.js';
import { buildRequest, encode, IDS, postTraces, syntheticTrace, TRACE_ID, T0 } from '../otlp/fixtures.js';
import { isObject, parseJsonAs } from '../harness/index.js';

/** A span as /api/traces/<id> serves it: what these tests read of it, checked. */
interface ApiSpan {
  name: string;
  spanId: string;
  depth: number;
  process: string;
  processLabel: string;
  offsetMs: number;
  durationMs: number;
  startTimeUnixNano: string;
  events: { offsetMs: number }[];
  status: unknown;
  outcome: unknown;
  attributes: unknown;
}

function isApiSpan(v: unknown): v is ApiSpan {
  return (
    isObject(v) &&
    ['name', 'spanId', 'process', 'processLabel', 'startTimeUnixNano'].every((k) => typeof v[k] === 'string') &&
    ['depth', 'offsetMs', 'durationMs'].every((k) => typeof v[k] === 'number') &&
    Array.isArray(v.events) &&
    v.events.every((e) => isObject(e) && typeof e.offsetMs === 'number')
  );
}

async function apiSpans(url: string): Promise<ApiSpan[]> {
  const text = await (await fetch(url)).text();
  return parseJsonAs(text, (v): v is ApiSpan[] => Array.isArray(v) && v.every(isApiSpan), url);
}

describe('viewer HTTP API', () => {
  let rx: OtlpReceiver;
  before(async () => {
    rx = await startOtlpReceiver({ grpcPort: null, routes: handleViewerRequest });
    await postTraces(rx.httpUrl, encode(buildRequest(syntheticTrace())));
    // bytes and a big int, to check the JSON encoding
    await postTraces(
      rx.httpUrl,
      encode(
        buildRequest([
          {
            resource: { 'service.name': 'x' },
            spans: [
              {
                traceId: 'ab'.repeat(16),
                spanId: '1111111111111111',
                name: 'odd',
                startMs: 0,
                endMs: 1,
                attributes: { big: 2n ** 60n, raw: new Uint8Array([0xde, 0xad]) },
              },
            ],
          },
        ]),
      ),
    );
  });
  after(() => rx.close());

  test('GET / is the page', async () => {
    const res = await fetch(`${rx.httpUrl}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    const html = await res.text();
    assert.match(html, /<title>wasmts traces<\/title>/);
    assert.match(html, /setInterval\(refreshList, 2000\)/);
  });

  test('GET /api/traces lists summaries with times in ms', async () => {
    const list = (await (await fetch(`${rx.httpUrl}/api/traces`)).json()) as Record<string, unknown>[];
    const t = list.find((x) => x.traceId === TRACE_ID)!;
    assert.deepEqual(
      { ...t, lastReceivedAt: 0 },
      {
        traceId: TRACE_ID,
        rootName: 'shim.main',
        service: 'wasmts',
        services: ['wasmts'],
        spanCount: 7,
        startMs: Number(T0) / 1e6,
        endMs: Number(T0) / 1e6 + 100,
        durationMs: 100,
        hasRoot: true,
        orphanCount: 0,
        lastReceivedAt: 0,
        errorCount: 1,
        exitCode: null,
      },
    );
  });

  test('GET /api/traces/<id> gives the spans in display order, JSON-safe', async () => {
    const spans = await apiSpans(`${rx.httpUrl}/api/traces/${TRACE_ID.toUpperCase()}`);
    assert.deepEqual(
      spans.map((s) => [s.name, s.depth, s.process]),
      [
        ['shim.main', 0, 'shim'],
        ['task.create', 1, 'shim'],
        ['task.start', 1, 'shim'],
        ['wasm.compile', 2, 'child'],
        ['wasm.instantiate', 2, 'child'],
        ['wasm.run', 2, 'child'],
        ['task.wait', 1, 'shim'],
      ],
    );
    const run = spans.find((s) => s.spanId === IDS.run);
    assert.ok(run);
    assert.equal(run.offsetMs, 40);
    assert.equal(run.durationMs, 50);
    assert.equal(run.startTimeUnixNano, (T0 + 40_000_000n).toString());
    assert.equal(run.processLabel, 'wasm child');
    assert.equal(run.events[0]?.offsetMs, 89);
    assert.deepEqual(run.status, { code: 2, codeName: 'error', message: 'exit code 3' });
    assert.deepEqual(run.outcome, { error: true, exitCode: 3, errorType: '3', text: '✗ exit 3 · exit code 3' });

    const [odd] = await apiSpans(`${rx.httpUrl}/api/traces/${'ab'.repeat(16)}`);
    assert.deepEqual(odd.attributes, { big: (2n ** 60n).toString(), raw: 'dead' });
  });

  test('unknown trace → 404, other methods → 405, other paths → 404', async () => {
    assert.equal((await fetch(`${rx.httpUrl}/api/traces/${'0'.repeat(31)}1`)).status, 404);
    assert.equal((await fetch(`${rx.httpUrl}/api/traces/not-an-id`)).status, 404);
    assert.equal((await fetch(`${rx.httpUrl}/`, { method: 'POST', body: 'x' })).status, 405);
    assert.equal((await fetch(`${rx.httpUrl}/favicon.ico`)).status, 404);
  });
});
