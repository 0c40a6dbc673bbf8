// `make install` carries what components need: the installed Wasm child, away
// from the checkout's node_modules, transpiles and runs a component with the
// packages install copied to $(LIBDIR)/node_modules. (`-o build`: the recipe
// only, dist/ is not rebuilt under other suites' running shims.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { NodeEngine } from '../../src/daemon/engine/node-engine.js';
import { ensureBuilt, REPO } from '../harness/index.js';

let prefix: string;

before(async () => {
  await ensureBuilt();
  prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-install-'));
});

after(() => fs.rmSync(prefix, { recursive: true, force: true }));

test(
  'make install: the installed child runs a component with the packages it copied',
  { timeout: 120_000 },
  async () => {
    execFileSync('make', ['-s', '-o', 'build', 'install', `PREFIX=${prefix}`], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const lib = path.join(prefix, 'lib', 'wasmts');
    for (const p of ['@bytecodealliance/jco-transpile', '@bytecodealliance/preview2-shim', 'oxc-minify']) {
      assert.ok(fs.existsSync(path.join(lib, 'node_modules', p, 'package.json')), `${p} not installed`);
    }
    const root = path.join(prefix, 'rootfs');
    fs.mkdirSync(root);
    fs.copyFileSync(path.join(REPO, 'build', 'modules', 'hello.component.wasm'), path.join(root, 'hello.wasm'));
    const out = path.join(prefix, 'out');
    fs.writeFileSync(out, '');
    const engine = new NodeEngine({
      childEntry: path.join(lib, 'dist', 'wasm-child.cjs'),
      componentCache: { dir: path.join(prefix, 'cache'), maxBytes: 64 << 20 },
    });
    const instance = await engine.prepare({
      containerId: 'install',
      execId: '',
      modulePath: path.join(root, 'hello.wasm'),
      exportName: '_start',
      args: ['/hello.wasm'],
      env: [],
      preopens: { '/': root },
      stdout: `file://${out}`,
      stderr: `file://${out}`,
    });
    instance.run();
    assert.equal((await instance.exited).status, 0, fs.readFileSync(out, 'utf8'));
    assert.equal(fs.readFileSync(out, 'utf8'), 'hello from wasm\n');
    assert.equal(
      fs.readdirSync(path.join(prefix, 'cache')).filter((n) => !n.startsWith('.')).length,
      1,
      'transpiled into the cache',
    );
  },
);
