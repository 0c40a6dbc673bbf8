// The web viewer in a real browser: Debian's chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { handleViewerRequest } from '../../src/viewer/web.js';
import { buildRequest, encode, IDS, postTraces, syntheticTrace, TRACE_ID } from '../otlp/fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const OTHER_TRACE = 'fedcba9876543210fedcba9876543210';

describe('web viewer in chromium', () => {
  let rx: OtlpReceiver;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;

  before(async () => {
    execFileSync(path.join(ROOT, 'scripts/ensure-browser.sh'), {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 10 * 60_000,
    });
    rx = await startOtlpReceiver({ grpcPort: null, routes: handleViewerRequest });
    assert.equal((await postTraces(rx.httpUrl, encode(buildRequest(syntheticTrace())))).status, 200);
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 800 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(10_000);
  });

  after(async () => {
    await ctx?.close();
    await rx?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  test('lists the trace, draws every span, shows a clicked span, refreshes the list', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${rx.httpUrl}/`);

    // The trace list.
    const row = page.locator(`#traces tbody tr[data-trace-id="${TRACE_ID}"]`);
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[0], 'shim.main');
    assert.equal(cells[1], 'wasmts');
    assert.equal(cells[2], '7');
    assert.equal(cells[3], '✗ 1 error');
    assert.equal(cells[4], '100ms');
    assert.match(cells[5], /^\d\d:\d\d:\d\d\.\d{3}$/);
    assert.match(
      (await page.locator('#endpoint').textContent()) ?? '',
      new RegExp(`OTEL_EXPORTER_OTLP_ENDPOINT=${rx.httpUrl}$`),
    );

    // Select it: every span gets a row with a bar, nested by parent.
    await row.click();
    await page.locator('#waterfall .row').nth(6).waitFor();
    // (runs in the page; the project's tsconfig has no DOM lib, hence the local types)
    type El = {
      dataset: Record<string, string | undefined>;
      className: string;
      textContent: string | null;
      style: Record<string, string>;
      querySelector(sel: string): El | null;
      getBoundingClientRect(): { width: number };
    };
    const rows = await page.locator('#waterfall .row').evaluateAll((nodes) =>
      (nodes as unknown as El[]).map((e) => {
        const bar = e.querySelector('.bar')!;
        const css = (
          globalThis as unknown as { getComputedStyle(el: El): { backgroundColor: string } }
        ).getComputedStyle(bar);
        return {
          id: e.dataset.spanId,
          name: e.querySelector('.name')?.textContent,
          indent: parseFloat(e.querySelector('.label')!.style.paddingLeft),
          barClass: bar.className,
          left: parseFloat(bar.style.left),
          width: parseFloat(bar.style.width),
          color: css.backgroundColor,
          visible: bar.getBoundingClientRect().width > 0,
        };
      }),
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['shim.main', 'task.create', 'task.start', 'wasm.compile', 'wasm.instantiate', 'wasm.run', 'task.wait'],
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      [IDS.main, IDS.create, IDS.start, IDS.compile, IDS.instantiate, IDS.run, IDS.wait],
    );
    for (const r of rows) assert.ok(r.visible, `bar of ${r.name} is not drawn`);
    const indent = Object.fromEntries(rows.map((r): [string, number] => [r.name ?? '', r.indent]));
    assert.ok(indent['task.start'] > indent['shim.main']);
    assert.ok(indent['wasm.run'] > indent['task.start']);
    assert.equal(indent['task.wait'], indent['task.start']);
    const shimRows = rows.filter((r) => r.name!.startsWith('shim') || r.name!.startsWith('task'));
    const childRows = rows.filter((r) => r.name!.startsWith('wasm'));
    for (const r of shimRows) assert.equal(r.barClass, 'bar shim');
    for (const r of childRows) assert.equal(r.barClass, 'bar child');
    assert.notEqual(shimRows[0].color, childRows[0].color, 'shim and child bars share a colour');
    const run = rows.find((r) => r.name === 'wasm.run')!;
    assert.ok(
      Math.abs(run.left - 40) < 0.01 && Math.abs(run.width - 50) < 0.01,
      `wasm.run bar at ${run.left}% +${run.width}%`,
    );
    assert.deepEqual(
      await page
        .locator('#legend')
        .innerText()
        .then((t) => t.split(/\s+/).filter(Boolean)),
      ['shim', 'wasm', 'child', 'other', 'process'],
    );

    // Click a span: its attributes, resource, events and links in the side panel.
    await page.locator(`#waterfall .row[data-span-id="${IDS.run}"]`).click();
    const panel = page.locator('#panel');
    await panel.locator('h2', { hasText: 'wasm.run' }).waitFor();
    const kv = async (table: string, key: string): Promise<string | null> =>
      panel.locator(`table.${table} tr[data-key="${key}"] td.v`).textContent();
    assert.equal(await kv('attributes', 'wasi.exit_code'), '3');
    assert.equal(await kv('attributes', 'wasm.module'), 'hello.wasm');
    assert.equal(await kv('attributes', 'wasi.args'), '["hello","--n","3"]');
    assert.equal(await kv('resource', 'process.pid'), '4243');
    assert.equal(await kv('resource', 'wasmts.process'), 'child');
    assert.equal(await kv('summary', 'process'), 'wasm child');
    assert.equal(await kv('summary', 'status'), 'error: exit code 3');
    assert.equal(await kv('summary', 'exit code'), '3');
    assert.equal(await kv('summary', 'error.type'), '3');
    assert.equal(
      await page.locator(`#waterfall .row[data-span-id="${IDS.run}"] .outcome.err`).textContent(),
      '✗ exit 3 · exit code 3',
    );
    assert.equal(
      await page.locator(`#traces tbody tr[data-trace-id="${TRACE_ID}"] td.outcome`).textContent(),
      '✗ 1 error',
    );
    assert.equal(await kv('summary', 'parent span id'), IDS.start);
    const panelText = await panel.innerText();
    assert.match(panelText, /\+89\.0ms\s+proc_exit/);
    assert.match(panelText, /trace 0af7651916cd43dd8448eb211c80319c span b7ad6b7169203331/);
    assert.ok(await page.locator(`#waterfall .row.selected[data-span-id="${IDS.run}"]`).isVisible());

    fs.mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'test-output/viewer.png'), fullPage: true });

    // The list refreshes by itself (every 2 s) and the selection stays.
    assert.equal((await postTraces(rx.httpUrl, encode(buildRequest(syntheticTrace(OTHER_TRACE))))).status, 200);
    await page.locator(`#traces tbody tr[data-trace-id="${OTHER_TRACE}"]`).waitFor({ timeout: 5000 });
    assert.ok(await page.locator(`#traces tbody tr.selected[data-trace-id="${TRACE_ID}"]`).isVisible());
    assert.equal(await page.locator('#panel h2').textContent(), 'wasm.run');
    assert.deepEqual(errors, []);
  });
});
