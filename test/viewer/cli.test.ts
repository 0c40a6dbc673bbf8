import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tracesMain, parseTraceId, completeness, type TracesIo } from '../../src/viewer/cli.js';
import { startOtlpReceiver } from '../../src/otlp/receiver.js';
import { buildRequest, encode, postTraces, receivedSpans, syntheticTrace, TRACE_ID } from '../otlp/fixtures.js';
import { settled, sleep } from '../harness/index.js';

class Capture {
  text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

/** Runs tracesMain on ephemeral ports; `receiver` resolves with the address it prints once it listens. */
function run(args: string[], extra: Partial<TracesIo> = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = tracesMain(
    ['--http-port', '0', '--grpc-port', '0', '--no-color', '--width', '100', '--settle', '0.15', ...args],
    { stdout, stderr, ...extra },
  );
  const receiver = (async (): Promise<{ httpUrl: string }> => {
    for (;;) {
      const printed = /OTLP\/HTTP {2}(http:\/\/\S+)\/v1\/traces/.exec(stdout.text + stderr.text);
      if (printed) return { httpUrl: printed[1] };
      const exited = await Promise.race([code, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10))]);
      if (exited !== undefined) throw new Error(`tracesMain exited ${exited} before listening: ${stderr.text}`);
    }
  })();
  receiver.catch(() => undefined); // a test that never awaits it must not see an unhandled rejection
  return { stdout, stderr, receiver, code };
}

const TRACE2 = '1234567890abcdef1234567890abcdef';

describe('wasmts traces (tracesMain)', () => {
  test('--once prints the first complete trace once it settles', async () => {
    const r = run(['--once', '--wait', '10']);
    const rx = await r.receiver;
    assert.match(r.stderr.text, /OTLP\/HTTP {2}http:\/\/127\.0\.0\.1:\d+\/v1\/traces/);
    assert.match(r.stderr.text, /OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/127\.0\.0\.1:\d+/);
    // The child's spans first (their parent is a shim span not yet sent): not complete yet.
    const [shim, child] = syntheticTrace();
    await postTraces(rx.httpUrl, encode(buildRequest([child])));
    await sleep(400);
    assert.equal(r.stdout.text, '', 'printed a partial trace');
    await postTraces(rx.httpUrl, encode(buildRequest([shim])));
    assert.equal(await r.code, 0);
    assert.match(r.stdout.text, new RegExp(`^trace ${TRACE_ID} · 7 spans · 100ms`));
    assert.match(r.stdout.text, /\n {4}wasm\.run\s+wasm child/);
  });

  test('--trace waits for that trace (by id or traceparent) and ignores others', async () => {
    const r = run(['--trace', `00-${TRACE2}-a000000000000001-01`, '--wait', '10']);
    const rx = await r.receiver;
    assert.match(r.stderr.text, new RegExp(`Waiting for trace ${TRACE2}`));
    await postTraces(rx.httpUrl, encode(buildRequest(syntheticTrace(TRACE_ID))));
    await sleep(300);
    assert.equal(r.stdout.text, '');
    await postTraces(rx.httpUrl, encode(buildRequest(syntheticTrace(TRACE2))));
    assert.equal(await r.code, 0);
    assert.match(r.stdout.text, new RegExp(`^trace ${TRACE2} · 7 spans`));
    assert.doesNotMatch(r.stdout.text, new RegExp(TRACE_ID));
  });

  test('--trace gives up after --wait with a clear message', async () => {
    const r = run(['--trace', TRACE2, '--wait', '0.3']);
    assert.equal(await r.code, 1);
    assert.match(
      r.stderr.text,
      new RegExp(`wasmts traces: trace ${TRACE2} did not arrive within 0.3 s \\(no spans received\\)`),
    );
  });

  test('serve mode prints each trace as it settles, again when it grows, and stops on abort', async () => {
    const ac = new AbortController();
    const r = run([], { signal: ac.signal });
    const rx = await r.receiver;
    assert.match(r.stdout.text, /viewer {5}http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(r.stdout.text, /Ctrl-C to stop/);
    const [shim, child] = syntheticTrace();
    await postTraces(rx.httpUrl, encode(buildRequest([shim])));
    await sleep(400);
    assert.match(r.stdout.text, /\ntrace 4bf92f3577b34da6a3ce929d0e0e4736 · 4 spans/);
    await postTraces(rx.httpUrl, encode(buildRequest([child])));
    await sleep(400);
    assert.match(r.stdout.text, /\n\(updated\) trace 4bf92f3577b34da6a3ce929d0e0e4736 · 7 spans/);
    ac.abort();
    assert.equal(await r.code, 0);
    await assert.rejects(fetch(`${rx.httpUrl}/api/traces`), 'receiver closed');
  });

  test('a port in use is one clear line on stderr and a non-zero exit', async () => {
    const busy = await startOtlpReceiver({ grpcPort: null });
    try {
      const port = new URL(busy.httpUrl).port;
      const stdout = new Capture();
      const stderr = new Capture();
      const code = await tracesMain(['--http-port', port, '--grpc-port', '0'], { stdout, stderr });
      assert.equal(code, 1);
      assert.equal(
        stderr.text,
        `wasmts traces: cannot listen for OTLP/HTTP on 127.0.0.1:${port}: address already in use\n`,
      );
      assert.equal(stdout.text, '');
      const gbusy = await startOtlpReceiver({ httpPort: null });
      try {
        const gport = new URL(gbusy.grpcUrl).port;
        const stderr2 = new Capture();
        assert.equal(
          await tracesMain(['--http-port', '0', '--grpc-port', gport], { stdout: new Capture(), stderr: stderr2 }),
          1,
        );
        assert.equal(
          stderr2.text,
          `wasmts traces: cannot listen for OTLP/gRPC on 127.0.0.1:${gport}: address already in use\n`,
        );
      } finally {
        await gbusy.close();
      }
    } finally {
      await busy.close();
    }
  });

  test('usage errors exit 2; --help exits 0', async () => {
    for (const args of [
      ['--bogus'],
      ['--http-port', 'x'],
      ['--trace', 'nothex'],
      ['--once', '--trace', TRACE2],
      ['--max-spans', '0'],
    ]) {
      const stderr = new Capture();
      assert.equal(await tracesMain(args, { stdout: new Capture(), stderr }), 2, args.join(' '));
      assert.match(stderr.text, /^wasmts traces: .*\(see --help\)\n$/);
    }
    const out = new Capture();
    assert.equal(await tracesMain(['--help'], { stdout: out, stderr: new Capture() }), 0);
    assert.match(out.text, /^Usage: wasmts traces/);
  });

  test('parseTraceId and completeness', () => {
    assert.equal(parseTraceId(TRACE2.toUpperCase()), TRACE2);
    assert.throws(() => parseTraceId('00-abc'));
    const [shim, child] = syntheticTrace();
    assert.equal(completeness(receivedSpans([shim, child])), 'root');
    assert.equal(completeness(receivedSpans([child])), 'partial'); // three spans under a missing parent
    assert.equal(completeness(receivedSpans([{ ...child, spans: child.spans.slice(2) }])), 'remote-root');
  });

  test('npx tsx scripts/traces.ts serves and exits 0 on SIGINT', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/traces.ts', '--http-port', '0', '--grpc-port', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    await settled(
      () => out,
      (o) => /Ctrl-C to stop/.test(o),
      15_000,
      50,
    );
    const base = /viewer {5}(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
    assert.ok(base, out);
    assert.equal((await postTraces(base, encode(buildRequest(syntheticTrace())))).status, 200);
    await settled(
      () => out,
      (o) => /7 spans/.test(o),
      5_000,
      50,
    );
    assert.match(out, /trace 4bf92f3577b34da6a3ce929d0e0e4736 · 7 spans/);
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  });
});
