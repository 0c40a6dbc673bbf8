// callEntry in-process, on the built test modules: any export of a command
// module (probe) or a reactor (reactor), with stdio, env, preopens and exit
// statuses as the child gets them.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { WASI } from 'node:wasi';
import { callEntry, entryProblem, interceptProcExit } from '../../src/child/entry-call.js';
import { MODULES } from '../harness/index.js';

let dir: string;

before(() => {
  dir = fs.mkdtempSync(path.join(tmpdir(), 'wasmts-entry-'));
  fs.mkdirSync(path.join(dir, 'root', 'data'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'root', 'data', 'greeting.txt'), 'greetings from the rootfs\n');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  status?: number;
  error?: unknown;
  stdout: string;
  stderr: string;
}

let runs = 0;
async function run(module: string, exportName: string, env: Record<string, string> = {}): Promise<Outcome> {
  const n = runs++;
  const outPath = path.join(dir, `out-${n}`);
  const errPath = path.join(dir, `err-${n}`);
  const stdout = fs.openSync(outPath, 'w');
  const stderr = fs.openSync(errPath, 'w');
  const wasi = new WASI({
    version: 'preview1',
    args: [`/${module}.wasm`],
    env,
    preopens: { '/': path.join(dir, 'root') },
    stdout,
    stderr,
    returnOnExit: true,
  });
  const imports = wasi.getImportObject() as unknown as {
    wasi_snapshot_preview1: Record<string, (...a: (number | bigint)[]) => number>;
  };
  interceptProcExit(imports.wasi_snapshot_preview1);
  const mod = await WebAssembly.compile(fs.readFileSync(path.join(MODULES, `${module}.wasm`)));
  const instance = await WebAssembly.instantiate(mod, imports);
  const problem = entryProblem(instance, exportName);
  const outcome: Partial<Outcome> = {};
  if (problem) {
    outcome.error = problem;
  } else {
    try {
      outcome.status = callEntry(wasi, instance, exportName);
    } catch (err) {
      outcome.error = err;
    }
  }
  fs.closeSync(stdout);
  fs.closeSync(stderr);
  return { ...outcome, stdout: fs.readFileSync(outPath, 'utf8'), stderr: fs.readFileSync(errPath, 'utf8') };
}

test('a command module: _start runs main, with its exit status', async () => {
  const r = await run('hello', '_start');
  assert.deepEqual(r, { status: 0, stdout: 'hello from wasm\n', stderr: '' });
});

test('a command module: another export runs without main, with stdio, preopens and status 0', async () => {
  const r = await run('probe', 'hello');
  assert.equal(r.error, undefined);
  assert.deepEqual(r, { status: 0, stdout: 'hello from an export\ngreetings from the rootfs\n', stderr: '' });
});

test('a command module: proc_exit inside an export gives its status', async () => {
  const r = await run('probe', 'goodbye');
  assert.deepEqual(r, { status: 3, stdout: '', stderr: 'goodbye from an export\n' });
});

test('a trap inside an export throws a RuntimeError (the child maps it to 134)', async () => {
  const r = await run('probe', 'crash');
  assert.ok(r.error instanceof WebAssembly.RuntimeError, String(r.error));
});

test('a reactor: _initialize runs its constructors before the export, env reaches it', async () => {
  const r = await run('reactor', 'greet', { WHO: 'tester' });
  assert.deepEqual(r, { status: 0, stdout: 'hello from a reactor (initialized=42)\nWHO=tester\n', stderr: '' });
  const failed = await run('reactor', 'fail');
  assert.deepEqual(failed, { status: 9, stdout: '', stderr: 'reactor failing\n' });
  const crashed = await run('reactor', 'crash');
  assert.ok(crashed.error instanceof WebAssembly.RuntimeError, String(crashed.error));
});

test('entries that cannot run are refused with the reason', async () => {
  assert.equal((await run('reactor', '_start')).error, 'has no exported function "_start"');
  assert.equal((await run('probe', 'nope')).error, 'has no exported function "nope"');
  assert.equal((await run('probe', 'memory')).error, 'has no exported function "memory"');
  assert.equal((await run('probe', 'add')).error, 'export "add" takes 2 parameter(s); an entry point takes none');
});
