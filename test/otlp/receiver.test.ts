import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  ExportTraceServiceRequestSchema,
  ExportTraceServiceResponseSchema,
  type ExportTraceServiceRequest,
  type ExportTraceServiceResponse,
} from '../../src/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import { StatusSchema } from '../../src/gen/google/rpc/status_pb.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../src/otlp/receiver.js';
import { isObject } from '../harness/index.js';
import { buildRequest, encode, IDS, postTraces, syntheticTrace, T0, toOtlpJson, TRACE_ID, MS } from './fixtures.js';

const traceIdFor = (n: number): string => n.toString(16).padStart(32, '0').replace(/^0/, 'c');

/** A trace with a distinct id so tests sharing one receiver don't collide. */
function uniqueTrace(n: number): { traceId: string; req: ExportTraceServiceRequest } {
  const traceId = traceIdFor(n);
  return { traceId, req: buildRequest(syntheticTrace(traceId)) };
}

function byName(spans: ReceivedSpan[]): Map<string, ReceivedSpan> {
  return new Map(spans.map((s) => [s.name, s]));
}

function checkSynthetic(spans: ReceivedSpan[], traceId: string, protocol: 'http' | 'grpc'): void {
  assert.equal(spans.length, 7);
  const m = byName(spans);
  const main = m.get('shim.main')!;
  assert.equal(main.traceId, traceId);
  assert.equal(main.spanId, IDS.main);
  assert.equal(main.parentSpanId, '');
  assert.equal(main.kind, 2);
  assert.equal(main.startTimeUnixNano, T0);
  assert.equal(main.endTimeUnixNano, T0 + 100n * MS);
  assert.deepEqual(main.resource, { 'service.name': 'wasmts', 'process.pid': 4242, 'wasmts.process': 'shim' });
  assert.deepEqual(main.scope, { name: 'wasmts-shim', version: '0.1.0' });
  assert.equal(main.protocol, protocol);
  assert.deepEqual(main.status, { code: 0, message: '' });

  const run = m.get('wasm.run')!;
  assert.equal(run.parentSpanId, IDS.start);
  assert.equal(run.kind, 1);
  assert.deepEqual(run.attributes, {
    'wasi.exit_code': 3,
    'process.exit.code': 3,
    'error.type': '3',
    'wasm.module': 'hello.wasm',
    'wasi.args': ['hello', '--n', '3'],
  });
  assert.deepEqual(run.status, { code: 2, message: 'exit code 3' });
  assert.deepEqual(run.events, [{ name: 'proc_exit', timeUnixNano: T0 + 89n * MS, attributes: { code: 3 } }]);
  assert.deepEqual(run.links, [
    { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', attributes: { why: 'test' } },
  ]);
  assert.equal(run.resource['wasmts.process'], 'child');
  assert.deepEqual(run.scope, { name: 'wasmts-child', version: '0.1.0' });
}

describe('OTLP receiver', () => {
  let rx: OtlpReceiver;
  before(async () => {
    rx = await startOtlpReceiver();
  });
  after(async () => {
    await rx.close();
  });

  test('listens on ephemeral loopback ports for HTTP and gRPC', () => {
    assert.match(rx.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(rx.grpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(rx.httpUrl, rx.grpcUrl);
  });

  test('OTLP/HTTP protobuf: decodes every field and answers an ExportTraceServiceResponse', async () => {
    const { traceId, req } = uniqueTrace(1);
    const before = rx.requests.http;
    const res = await postTraces(rx.httpUrl, encode(req));
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/x-protobuf');
    const resp = fromBinary(ExportTraceServiceResponseSchema, res.body);
    assert.equal(resp.partialSuccess, undefined);
    assert.equal(rx.requests.http, before + 1);
    checkSynthetic(rx.trace(traceId), traceId, 'http');
  });

  test('attribute value kinds: string, bool, int, big int, double, bytes, array, kvlist', async () => {
    const traceId = traceIdFor(2);
    const req = buildRequest([
      {
        resource: { 'service.name': 'kinds' },
        spans: [
          {
            traceId,
            spanId: '1111111111111111',
            name: 'kinds',
            startMs: 0,
            endMs: 1,
            attributes: {
              s: 'x',
              b: true,
              i: -7,
              big: 2n ** 62n,
              d: 1.5,
              bytes: new Uint8Array([1, 2]),
              arr: [1, 'two', false],
              kv: { nested: { deep: 'y' } },
            },
          },
        ],
      },
    ]);
    assert.equal((await postTraces(rx.httpUrl, encode(req))).status, 200);
    const [span] = rx.trace(traceId);
    assert.deepEqual(span.attributes, {
      s: 'x',
      b: true,
      i: -7,
      big: 2n ** 62n,
      d: 1.5,
      bytes: new Uint8Array([1, 2]),
      arr: [1, 'two', false],
      kv: { nested: { deep: 'y' } },
    });
  });

  test('OTLP/JSON with hex ids decodes to the same spans as protobuf', async () => {
    const { traceId, req } = uniqueTrace(3);
    const body = toOtlpJson(req);
    assert.ok(body.includes(`"traceId":"${traceId}"`), 'fixture JSON uses hex ids');
    const res = await postTraces(rx.httpUrl, body, { 'content-type': 'application/json; charset=utf-8' });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.type, 'application/json');
    assert.deepEqual(JSON.parse(res.body.toString()), {});
    checkSynthetic(rx.trace(traceId), traceId, 'http');
  });

  test('OTLP/JSON: snake_case names, int64 as strings, enum numbers, unknown fields ignored', async () => {
    const traceId = traceIdFor(4);
    const body = JSON.stringify({
      resource_spans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'json-svc' } }] },
          scope_spans: [
            {
              scope: { name: 'hand', version: '1' },
              spans: [
                {
                  trace_id: traceId.toUpperCase(),
                  span_id: '2222222222222222',
                  parent_span_id: '',
                  name: 'by hand',
                  kind: 3,
                  start_time_unix_nano: (T0 + 1n).toString(),
                  endTimeUnixNano: Number(2e18),
                  attributes: [{ key: 'n', value: { intValue: '42' } }],
                  status: { code: 1 },
                  someFutureField: { x: 1 },
                },
              ],
            },
          ],
        },
      ],
    });
    const res = await postTraces(rx.httpUrl, body, { 'content-type': 'application/json' });
    assert.equal(res.status, 200, res.body.toString());
    const [s] = rx.trace(traceId);
    assert.ok(s);
    assert.equal(s.spanId, '2222222222222222');
    assert.equal(s.parentSpanId, '');
    assert.equal(s.kind, 3);
    assert.equal(s.startTimeUnixNano, T0 + 1n);
    assert.equal(s.endTimeUnixNano, 2_000_000_000_000_000_000n);
    assert.deepEqual(s.attributes, { n: 42 });
    assert.equal(s.status.code, 1);
    assert.equal(s.resource['service.name'], 'json-svc');
  });

  test('gzip Content-Encoding, protobuf and JSON', async () => {
    const a = uniqueTrace(5);
    const res = await postTraces(rx.httpUrl, zlib.gzipSync(encode(a.req)), {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    assert.equal(res.status, 200);
    checkSynthetic(rx.trace(a.traceId), a.traceId, 'http');
    const b = uniqueTrace(6);
    const res2 = await postTraces(rx.httpUrl, zlib.gzipSync(toOtlpJson(b.req)), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    assert.equal(res2.status, 200);
    checkSynthetic(rx.trace(b.traceId), b.traceId, 'http');
  });

  test('garbage gets 4xx with a google.rpc.Status, and the receiver keeps working', async () => {
    const before = rx.spans().length;
    const cases: [Uint8Array | string, Record<string, string>, number][] = [
      [new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), { 'content-type': 'application/x-protobuf' }, 400],
      [new Uint8Array([0x0a, 0x50, 0x01]), { 'content-type': 'application/x-protobuf' }, 400], // truncated length-delimited field
      ['{not json', { 'content-type': 'application/json' }, 400],
      ['[1,2]', { 'content-type': 'application/json' }, 400],
      ['{"resourceSpans": 5}', { 'content-type': 'application/json' }, 400],
      [
        '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":{"x":1}}]}]}]}',
        { 'content-type': 'application/json' },
        400,
      ],
      [new Uint8Array([1, 2, 3]), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }, 400],
      [new Uint8Array([1, 2, 3]), { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' }, 415],
      ['hello', { 'content-type': 'text/plain' }, 415],
    ];
    for (const [body, headers, status] of cases) {
      const res = await postTraces(rx.httpUrl, body, headers);
      assert.equal(
        res.status,
        status,
        `${JSON.stringify(headers)} ${String(body)} -> ${res.status} ${res.body.toString()}`,
      );
      if (headers['content-type'] === 'application/x-protobuf') {
        const st = fromBinary(StatusSchema, res.body);
        assert.ok(st.message.length > 0);
      } else if (headers['content-type'] === 'application/json') {
        const parsed: unknown = JSON.parse(res.body.toString());
        assert.ok(isObject(parsed) && typeof parsed.message === 'string', res.body.toString());
      }
    }
    // Not HTTP at all, and a request cut off mid-body.
    await new Promise<void>((resolve) => {
      const url = new URL(rx.httpUrl);
      const sock = net.connect(Number(url.port), url.hostname, () => sock.end('\x16\x03\x01garbage\r\n\r\n'));
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
      sock.resume();
    });
    await new Promise<void>((resolve) => {
      const url = new URL(rx.httpUrl);
      const sock = net.connect(Number(url.port), url.hostname, () => {
        sock.write(
          'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\nabc',
        );
        setTimeout(() => sock.destroy(), 50);
      });
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
    assert.equal(rx.spans().length, before, 'nothing stored from garbage');

    const notFound = await fetch(`${rx.httpUrl}/v1/metrics`, { method: 'POST', body: 'x' });
    assert.equal(notFound.status, 404);
    const wrongMethod = await fetch(`${rx.httpUrl}/v1/traces`);
    assert.equal(wrongMethod.status, 405);

    const ok = uniqueTrace(7);
    assert.equal((await postTraces(rx.httpUrl, encode(ok.req))).status, 200);
    assert.equal(rx.trace(ok.traceId).length, 7);
  });

  test('spans with invalid ids are dropped and reported as a partial success', async () => {
    const traceId = traceIdFor(8);
    const req = buildRequest([
      {
        resource: {},
        spans: [
          { traceId, spanId: '3333333333333333', name: 'good', startMs: 0, endMs: 1 },
          { traceId, spanId: '0000000000000000', name: 'zero span id', startMs: 0, endMs: 1 },
          { traceId: 'abcd', spanId: '4444444444444444', name: 'short trace id', startMs: 0, endMs: 1 },
        ],
      },
    ]);
    const res = await postTraces(rx.httpUrl, encode(req));
    assert.equal(res.status, 200);
    const resp = fromBinary(ExportTraceServiceResponseSchema, res.body);
    assert.equal(resp.partialSuccess?.rejectedSpans, 2n);
    assert.deepEqual(
      rx.trace(traceId).map((s) => s.name),
      ['good'],
    );
  });

  describe('OTLP/gRPC', () => {
    let client: grpc.Client;
    before(() => {
      client = new grpc.Client(new URL(rx.grpcUrl).host, grpc.credentials.createInsecure());
    });
    after(() => client.close());

    const exportCall = (c: grpc.Client, req: ExportTraceServiceRequest | Buffer): Promise<ExportTraceServiceResponse> =>
      new Promise((resolve, reject) => {
        c.makeUnaryRequest(
          '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          (m: ExportTraceServiceRequest | Buffer) =>
            Buffer.isBuffer(m) ? m : Buffer.from(toBinary(ExportTraceServiceRequestSchema, m)),
          (b: Buffer) => fromBinary(ExportTraceServiceResponseSchema, b),
          req,
          (err, resp) => (err ? reject(err) : resolve(resp!)),
        );
      });

    test('Export decodes spans sent by a grpc-js client', async () => {
      const { traceId, req } = uniqueTrace(9);
      const before = rx.requests.grpc;
      const resp = await exportCall(client, req);
      assert.equal(resp.partialSuccess, undefined);
      assert.equal(rx.requests.grpc, before + 1);
      checkSynthetic(rx.trace(traceId), traceId, 'grpc');
    });

    test('gzip-compressed gRPC messages', async () => {
      const gz = new grpc.Client(new URL(rx.grpcUrl).host, grpc.credentials.createInsecure(), {
        'grpc.default_compression_algorithm': 2,
      });
      try {
        const { traceId, req } = uniqueTrace(10);
        await exportCall(gz, req);
        checkSynthetic(rx.trace(traceId), traceId, 'grpc');
      } finally {
        gz.close();
      }
    });

    test('a malformed message is INVALID_ARGUMENT and the server keeps serving', async () => {
      await assert.rejects(exportCall(client, Buffer.from([0xff, 0xff, 0xff])), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
        assert.match(err.details, /malformed/);
        return true;
      });
      const { traceId, req } = uniqueTrace(11);
      await exportCall(client, req);
      assert.equal(rx.trace(traceId).length, 7);
    });
  });

  test('traces() summarises each trace', () => {
    const t = rx.traces().find((x) => x.traceId === traceIdFor(1));
    assert.ok(t);
    assert.equal(t.rootName, 'shim.main');
    assert.equal(t.service, 'wasmts');
    assert.deepEqual(t.services, ['wasmts']);
    assert.equal(t.spanCount, 7);
    assert.equal(t.durationMs, 100);
    assert.equal(t.hasRoot, true);
    assert.equal(t.orphanCount, 0);
    assert.equal(t.startTimeUnixNano, T0);
    // What an operator alerts on: wasm.run failed with exit 3; the root carries no exit code.
    assert.equal(t.errorCount, 1);
    assert.equal(t.exitCode, undefined);
    const run = rx.trace(traceIdFor(1)).find((s) => s.name === 'wasm.run')!;
    assert.equal(run.status.code, 2);
    assert.equal(run.attributes['process.exit.code'], 3);
    assert.equal(run.attributes['error.type'], '3');
    // trace() is ordered by start time
    const starts = rx.trace(traceIdFor(1)).map((s) => s.startTimeUnixNano);
    assert.deepEqual(
      starts,
      [...starts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    assert.equal(rx.trace(traceIdFor(1).toUpperCase()).length, 7);
  });

  test('waitFor resolves on arrival, rejects on timeout listing what arrived', async () => {
    const { traceId, req } = uniqueTrace(12);
    const waiting = rx.waitFor((spans) => spans.some((s) => s.traceId === traceId && s.name === 'wasm.run'), 5000);
    const seen: ReceivedSpan[][] = [];
    const off = rx.onSpans((b) => seen.push(b));
    await postTraces(rx.httpUrl, encode(req));
    const spans = await waiting;
    assert.ok(spans.some((s) => s.traceId === traceId));
    off();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].length, 7);
    await assert.rejects(
      rx.waitFor(() => false, 50),
      /within 50 ms; received \d+ span\(s\): .*shim\.main/,
    );
  });
});

describe('OTLP receiver options', () => {
  test('maxSpans bounds the store, dropping the oldest spans first', async () => {
    const rx = await startOtlpReceiver({ maxSpans: 10, grpcPort: null });
    try {
      assert.equal(rx.grpcUrl, '');
      for (let i = 0; i < 5; i++) {
        const traceId = traceIdFor(100 + i);
        const req = buildRequest([
          {
            resource: {},
            spans: [0, 1, 2, 3].map((j) => ({
              traceId,
              spanId: `${i + 1}${j + 1}`.padStart(16, '0'),
              parent: j ? `${i + 1}1`.padStart(16, '0') : undefined,
              name: `t${i}s${j}`,
              startMs: j,
              endMs: 10,
            })),
          },
        ]);
        assert.equal((await postTraces(rx.httpUrl, encode(req))).status, 200);
        assert.ok(rx.spans().length <= 10);
      }
      const names = rx.spans().map((s) => s.name);
      assert.deepEqual(names, ['t2s2', 't2s3', 't3s0', 't3s1', 't3s2', 't3s3', 't4s0', 't4s1', 't4s2', 't4s3']);
      assert.deepEqual(rx.trace(traceIdFor(100)), []);
      assert.equal(rx.trace(traceIdFor(102)).length, 2);
      assert.deepEqual(
        rx
          .traces()
          .map((t) => [t.traceId, t.spanCount])
          .sort(),
        [
          [traceIdFor(102), 2],
          [traceIdFor(103), 4],
          [traceIdFor(104), 4],
        ],
      );
      const partial = rx.traces().find((t) => t.traceId === traceIdFor(102))!;
      assert.equal(partial.hasRoot, false);
      assert.equal(partial.orphanCount, 2);
    } finally {
      await rx.close();
    }
  });

  test('a port in use is a clear error and leaves nothing listening', async () => {
    const a = await startOtlpReceiver({ grpcPort: null });
    try {
      const port = Number(new URL(a.httpUrl).port);
      await assert.rejects(
        startOtlpReceiver({ httpPort: port }),
        /cannot listen for OTLP\/HTTP on 127\.0\.0\.1:\d+: address already in use/,
      );
      const g = await startOtlpReceiver({ httpPort: null });
      try {
        const gport = Number(new URL(g.grpcUrl).port);
        await assert.rejects(
          startOtlpReceiver({ grpcPort: gport }),
          /cannot listen for OTLP\/gRPC on 127\.0\.0\.1:\d+/,
        );
      } finally {
        await g.close();
      }
    } finally {
      await a.close();
    }
  });

  test('more HTTP routes answer only their own paths; without them only OTLP is served', async () => {
    const bare = await startOtlpReceiver({ grpcPort: null });
    try {
      assert.equal((await fetch(`${bare.httpUrl}/api/traces`)).status, 404);
    } finally {
      await bare.close();
    }
    const rx = await startOtlpReceiver({
      grpcPort: null,
      routes: (_req, res, url, store) => {
        if (url.pathname !== '/count') return false;
        res.end(String(store.traces().length));
        return true;
      },
    });
    try {
      assert.equal((await fetch(`${rx.httpUrl}/elsewhere`)).status, 404);
      assert.equal((await postTraces(rx.httpUrl, encode(buildRequest(syntheticTrace())))).status, 200);
      assert.equal(rx.trace(TRACE_ID).length, 7);
      assert.equal(await (await fetch(`${rx.httpUrl}/count`)).text(), '1');
    } finally {
      await rx.close();
    }
  });

  test('a fresh receiver imports without loading @grpc/grpc-js', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        "await import('./src/otlp/receiver.ts'); const r = (await import('node:module')).createRequire(process.cwd() + '/x.js'); console.log(Object.keys(r.cache).filter((k) => k.includes('@grpc')).length)",
      ],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
    );
    assert.equal(out.trim(), '0');
  });
});
