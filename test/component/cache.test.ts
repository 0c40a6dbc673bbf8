// The transpiled-component cache (src/child/component-cache.ts) with a fake
// transpiler that counts its calls: one transpile per digest, concurrent
// misses, corrupted and removed entries, a transpiler upgrade, LRU eviction.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { componentCacheConfig, DEFAULT_CACHE_DIR } from '../../src/child/cache-config.js';
import { isObject, type JsonObject, parseJsonAs, sleep } from '../harness/index.js';
import {
  evict,
  loadOrTranspile,
  sha256,
  type ComponentCacheOptions,
  type TranspileOutput,
} from '../../src/child/component-cache.js';

let dir: string;
let opts: ComponentCacheOptions;
let calls: number;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-ccache-'));
  opts = { dir: path.join(dir, 'cache'), maxBytes: 1 << 20, transpiler: 'fake@1' };
  calls = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const component = (n: number, size = 100) => new Uint8Array(size).fill(n);

/** Output whose files depend on the input, so a wrong entry would show. */
async function fakeTranspile(bytes: Uint8Array): Promise<TranspileOutput> {
  calls++;
  await sleep(20); // long enough for concurrent callers to overlap
  return {
    files: { 'component.mjs': Buffer.from(`export const n = ${bytes[0]};`), 'component.core.wasm': bytes.slice() },
    imports: ['wasi:cli/environment'],
    exports: ['wasi:cli/run@0.2.3'],
  };
}

const text = (u?: Uint8Array) => Buffer.from(u ?? []).toString();

test('a miss transpiles and stores; the next load is a hit with the same files', async () => {
  const first = await loadOrTranspile(component(1), opts, fakeTranspile);
  assert.equal(first.cache, 'miss');
  assert.equal(first.digest, sha256(component(1)));
  const second = await loadOrTranspile(component(1), opts, fakeTranspile);
  assert.equal(second.cache, 'hit');
  assert.equal(calls, 1);
  assert.equal(text(second.files['component.mjs']), 'export const n = 1;');
  assert.deepEqual(second.exports, ['wasi:cli/run@0.2.3']);
  assert.deepEqual(second.imports, ['wasi:cli/environment']);
  assert.deepEqual(fs.readdirSync(opts.dir), [first.digest], 'no temp dir left behind');
});

test('different components get different entries', async () => {
  await loadOrTranspile(component(1), opts, fakeTranspile);
  const b = await loadOrTranspile(component(2), opts, fakeTranspile);
  assert.equal(b.cache, 'miss');
  assert.equal(text(b.files['component.mjs']), 'export const n = 2;');
  assert.equal(calls, 2);
});

test('concurrent misses of the same component: one transpiles, the others wait for its entry', async () => {
  const results = await Promise.all(
    Array.from({ length: 5 }, () => loadOrTranspile(component(3), opts, fakeTranspile)),
  );
  for (const r of results) assert.equal(text(r.files['component.mjs']), 'export const n = 3;');
  assert.equal(calls, 1);
  assert.deepEqual(results.map((r) => r.cache).sort(), ['hit', 'hit', 'hit', 'hit', 'miss']);
  assert.deepEqual(fs.readdirSync(opts.dir), [sha256(component(3))], 'one entry, no lock or temp dir left');
});

test('a lock left by a dead Create is taken over; a live one is waited for, not forever when nothing comes', async () => {
  fs.mkdirSync(opts.dir, { recursive: true });
  const lock = path.join(opts.dir, `.lock-${sha256(component(20))}`);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  fs.writeFileSync(lock, String(dead));
  const t0 = Date.now();
  assert.equal((await loadOrTranspile(component(20), opts, fakeTranspile)).cache, 'miss');
  assert.ok(Date.now() - t0 < 2_000, 'no wait for a dead owner');
  assert.equal(fs.existsSync(lock), false);
  fs.writeFileSync(path.join(opts.dir, `.lock-${sha256(component(21))}`), 'garbage');
  assert.equal((await loadOrTranspile(component(21), opts, fakeTranspile)).cache, 'miss');
  // a live owner (this process) that never stores: the waiter polls, then a store by the owner ends the wait
  const live = path.join(opts.dir, `.lock-${sha256(component(22))}`);
  fs.writeFileSync(live, String(process.pid));
  let settled = false;
  const waiting = loadOrTranspile(component(22), opts, fakeTranspile).then((r) => {
    settled = true;
    return r;
  });
  await sleep(300);
  assert.equal(settled, false, 'waits while the owner lives');
  const before = calls;
  fs.rmSync(live); // the owner gives up without storing
  const r = await waiting;
  assert.equal(r.cache, 'miss');
  assert.equal(calls, before + 1);
});

test('a corrupted file, a broken manifest or a missing file is rebuilt, never used', async () => {
  const { digest } = await loadOrTranspile(component(4), opts, fakeTranspile);
  const entry = path.join(opts.dir, digest);
  fs.writeFileSync(path.join(entry, 'component.mjs'), 'export const n = 666;');
  let r = await loadOrTranspile(component(4), opts, fakeTranspile);
  assert.equal(r.cache, 'miss');
  assert.equal(text(r.files['component.mjs']), 'export const n = 4;');
  assert.equal((await loadOrTranspile(component(4), opts, fakeTranspile)).cache, 'hit', 'rebuilt entry is valid');

  fs.writeFileSync(path.join(entry, 'manifest.json'), '{"format":1,');
  r = await loadOrTranspile(component(4), opts, fakeTranspile);
  assert.equal(r.cache, 'miss');

  fs.rmSync(path.join(entry, 'component.core.wasm'));
  r = await loadOrTranspile(component(4), opts, fakeTranspile);
  assert.equal(r.cache, 'miss');
  assert.deepEqual([...r.files['component.core.wasm']], [...component(4)]);

  // a manifest naming a file outside the entry is refused
  const hasFiles = (v: unknown): v is { files: JsonObject } => isObject(v) && isObject(v.files);
  const manifest = parseJsonAs(fs.readFileSync(path.join(entry, 'manifest.json'), 'utf8'), hasFiles, 'manifest.json');
  manifest.files['../../escape'] = { size: 1, sha256: 'x' };
  fs.writeFileSync(path.join(entry, 'manifest.json'), JSON.stringify(manifest));
  assert.equal((await loadOrTranspile(component(4), opts, fakeTranspile)).cache, 'miss');
  assert.equal(calls, 5);
});

test('a manifest for another digest or another transpiler version is rebuilt', async () => {
  const a = await loadOrTranspile(component(5), opts, fakeTranspile);
  const b = await loadOrTranspile(component(6), opts, fakeTranspile);
  // swap the entries: each manifest names the other digest
  fs.renameSync(path.join(opts.dir, a.digest), path.join(dir, 'swap'));
  fs.renameSync(path.join(opts.dir, b.digest), path.join(opts.dir, a.digest));
  const r = await loadOrTranspile(component(5), opts, fakeTranspile);
  assert.equal(r.cache, 'miss');
  assert.equal(text(r.files['component.mjs']), 'export const n = 5;');
  const upgraded = await loadOrTranspile(component(5), { ...opts, transpiler: 'fake@2' }, fakeTranspile);
  assert.equal(upgraded.cache, 'miss');
  assert.equal((await loadOrTranspile(component(5), { ...opts, transpiler: 'fake@2' }, fakeTranspile)).cache, 'hit');
});

test('the cache directory removed, or replaced by a file, costs a transpile, not an error', async () => {
  await loadOrTranspile(component(7), opts, fakeTranspile);
  fs.rmSync(opts.dir, { recursive: true });
  assert.equal((await loadOrTranspile(component(7), opts, fakeTranspile)).cache, 'miss');
  assert.equal((await loadOrTranspile(component(7), opts, fakeTranspile)).cache, 'hit');
  fs.rmSync(opts.dir, { recursive: true });
  fs.writeFileSync(opts.dir, 'not a directory');
  const r = await loadOrTranspile(component(7), opts, fakeTranspile);
  assert.equal(r.cache, 'miss');
  assert.equal(text(r.files['component.mjs']), 'export const n = 7;');
});

test('past maxBytes the least recently used entries go, the newest stays', async () => {
  // each entry: 100-byte core + ~20-byte js + manifest (~400 bytes)
  const small = { ...opts, maxBytes: 1500 };
  const a = await loadOrTranspile(component(10), small, fakeTranspile);
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(opts.dir, a.digest), old, old);
  const b = await loadOrTranspile(component(11), small, fakeTranspile);
  fs.utimesSync(path.join(opts.dir, b.digest), new Date(Date.now() - 30_000), new Date(Date.now() - 30_000));
  // a hit makes a the most recently used
  assert.equal((await loadOrTranspile(component(10), small, fakeTranspile)).cache, 'hit');
  const c = await loadOrTranspile(component(12), small, fakeTranspile);
  const left = fs.readdirSync(opts.dir).sort();
  assert.ok(left.includes(c.digest), 'the entry just added stays');
  assert.ok(left.includes(a.digest), 'the recently used entry stays');
  assert.ok(!left.includes(b.digest), `the least recently used entry goes: ${left.join(', ')}`);
  // a bound smaller than one entry still keeps that one
  evict({ ...small, maxBytes: 1 }, c.digest);
  assert.deepEqual(fs.readdirSync(opts.dir), [c.digest]);
});

test('temp dirs of dead transpiles are cleared, fresh ones are left to their owner', async () => {
  await loadOrTranspile(component(13), opts, fakeTranspile);
  const dead = path.join(opts.dir, '.tmp-dead');
  const live = path.join(opts.dir, '.tmp-live');
  fs.mkdirSync(dead);
  fs.mkdirSync(live);
  const old = new Date(Date.now() - 2 * 3600_000);
  fs.utimesSync(dead, old, old);
  evict(opts);
  assert.equal(fs.existsSync(dead), false);
  assert.equal(fs.existsSync(live), true);
});

test('a transpiler output with a path in a file name is refused', async () => {
  const bad = (): Promise<TranspileOutput> =>
    Promise.resolve({
      files: { '../x.mjs': new Uint8Array(1) },
      imports: [],
      exports: [],
    });
  await assert.rejects(loadOrTranspile(component(14), opts, bad), /unexpected file name/);
});

test('config: WASMTS_COMPONENT_CACHE and WASMTS_COMPONENT_CACHE_MAX_MB, with defaults', () => {
  assert.deepEqual(componentCacheConfig({}), { dir: DEFAULT_CACHE_DIR, maxBytes: 512 * 1024 * 1024 });
  assert.deepEqual(componentCacheConfig({ WASMTS_COMPONENT_CACHE: '/x/y', WASMTS_COMPONENT_CACHE_MAX_MB: '3' }), {
    dir: '/x/y',
    maxBytes: 3 * 1024 * 1024,
  });
  assert.equal(componentCacheConfig({ WASMTS_COMPONENT_CACHE: 'relative' }).dir, DEFAULT_CACHE_DIR);
  assert.equal(componentCacheConfig({ WASMTS_COMPONENT_CACHE_MAX_MB: 'lots' }).maxBytes, 512 * 1024 * 1024);
});
