// The daemon ships as an esbuild bundle with the worker as a separate file
// (dist/telemetry-worker.mjs). Check that a bundled worker loads and exports,
// and that the bundled facade finds it by default as a sibling file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { startOtlpReceiver } from '../../src/otlp/receiver.js';
import { collectLogs } from './helpers.js';

/** The options the bundle needs: OpenTelemetry is CommonJS, so ESM output needs a real `require`. */
const WORKER_BUNDLE_BANNER =
  "import { createRequire as __wasmtsCreateRequire } from 'node:module'; const require = __wasmtsCreateRequire(import.meta.url);";

test('bundled worker (esbuild, ESM + require banner) loads and exports; facade finds it as a sibling', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmts-telemetry-bundle-'));
  const rcv = await startOtlpReceiver({ httpPort: 0, grpcPort: 0 });
  try {
    const src = (f: string): string => fileURLToPath(new URL(`../../src/telemetry/${f}`, import.meta.url));
    await build({
      entryPoints: [src('worker.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: join(dir, 'telemetry-worker.mjs'),
      banner: { js: WORKER_BUNDLE_BANNER },
      logLevel: 'silent',
    });
    await build({
      entryPoints: [src('index.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: join(dir, 'shim.mjs'),
      logLevel: 'silent',
    });
    const mod = (await import(
      pathToFileURL(join(dir, 'shim.mjs')).href
    )) as typeof import('../../src/telemetry/index.js');
    for (const protocol of ['http/protobuf', 'grpc']) {
      const { logs, log } = collectLogs();
      const t = mod.startTelemetry({
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: protocol === 'grpc' ? rcv.grpcUrl : rcv.httpUrl,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        },
        log,
      });
      const s = t.recorder.startSpan(`bundled-${protocol}`);
      s.end();
      await t.flush(15000);
      await rcv.waitFor((all) => all.some((x) => x.traceId === s.context.traceId), 10000);
      assert.equal(t.state, 'ready', JSON.stringify(logs));
      assert.ok(logs.some((l) => l.msg.includes('exporter ready')));
      await t.shutdown();
    }
  } finally {
    await rcv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
