// The installable package (issue 13, point 4): `npm pack` (its prepack
// builds dist/), `npm install -g` of the tarball into a temporary prefix, then
// a private containerd whose PATH is a service's PATH with only that prefix's
// bin/ added runs Wasm containers through the installed front end, and the
// daemon that serves them runs the installed code.
//
// The pack runs in a copy of the sources, so the build never rewrites the
// checkout's dist/ under other suites' running shims. The install prefers
// npm's cache, which `npm ci` filled (only the two packages components load
// at run time are installed).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  busyDaemonProblems,
  type Containerd,
  descendants,
  ensureBuilt,
  escapeRegExp,
  listMounts,
  listProcesses,
  MODULES,
  REPO,
  RUNTIME,
  settled,
  shimDaemons,
  socketPathFor,
  startContainerd,
} from '../harness/index.js';

const PACKAGE = 'wasmts';
const IMAGE = 'docker.io/wasmts-pack/hello:v1';
/** A service manager's PATH: node (/usr/bin/node, /usr/local/bin/node) is on it, the checkout is not. */
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** What the package ships; nothing else (no sources, no source maps, no tests). */
const EXPECTED_FILES = [
  'README.md',
  'bin/containerd-shim-wasmts-v1',
  'bin/package.json',
  'bin/wasmts',
  'dist/build-id',
  'dist/daemon.cjs',
  'dist/shim.cjs',
  'dist/telemetry-worker.cjs',
  'dist/wasm-child.cjs',
  'dist/wasmts.cjs',
  'package.json',
];

let tmp: string;
let prefix: string;
let installed: string;
let c: Containerd | undefined;

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The sources `npm pack` builds from (tracked and new files, not dist/ or build/), in a fresh directory. */
function copySources(to: string): void {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO })
    .toString()
    .split('\0');
  for (const file of listed) {
    if (!file || !/^(bin|scripts|src|proto)\/|^[^/]+$/.test(file)) continue;
    const from = path.join(REPO, file);
    if (!fs.existsSync(from)) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    fs.copyFileSync(from, path.join(to, file));
    fs.chmodSync(path.join(to, file), fs.statSync(from).mode);
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(to, 'node_modules'));
}

before(async () => {
  await ensureBuilt(); // the test modules
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-pack-'));
  prefix = path.join(tmp, 'prefix');
  installed = path.join(prefix, 'lib', 'node_modules', PACKAGE);
});

after(async () => {
  await c?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('npm pack, npm install -g: the installed shim runs Wasm containers', { timeout: 240_000 }, async () => {
  const src = path.join(tmp, 'src');
  copySources(src);
  assert.ok(!fs.existsSync(path.join(src, 'dist')), 'the copy starts without a build');
  run('npm', ['pack', '--pack-destination', tmp], src, 120_000);
  const tarballs = fs.readdirSync(tmp).filter((n) => n.endsWith('.tgz'));
  assert.equal(tarballs.length, 1, `one tarball: ${tarballs.join(', ')}`);
  const tarball = path.join(tmp, tarballs[0]);
  const contents = run('tar', ['-tzf', tarball], tmp, 10_000)
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  assert.deepEqual(contents.sort(), EXPECTED_FILES, 'tarball contents');

  run(
    'npm',
    ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    tmp,
    180_000,
  );
  for (const name of ['containerd-shim-wasmts-v1', 'wasmts']) {
    assert.equal(
      fs.realpathSync(path.join(prefix, 'bin', name)),
      path.join(installed, 'bin', name),
      `${name} on the prefix's PATH`,
    );
  }
  for (const p of ['@bytecodealliance/jco-transpile', '@bytecodealliance/preview2-shim']) {
    assert.ok(
      fs.existsSync(path.join(installed, 'node_modules', p, 'package.json')),
      `${p} installed with the package`,
    );
  }

  const env = { PATH: `${path.join(prefix, 'bin')}:${SERVICE_PATH}` };
  const image = path.join(tmp, 'image.tar');
  const packImage = spawnSync(
    path.join(prefix, 'bin', 'wasmts'),
    [
      'image',
      '--ref',
      IMAGE,
      '--out',
      image,
      '--file',
      `${path.join(MODULES, 'hello.component.wasm')}:/hello.component.wasm`,
      '--file',
      `${path.join(MODULES, 'probe.wasm')}:/probe.wasm`,
      path.join(MODULES, 'hello.wasm'),
    ],
    { encoding: 'utf8', env },
  );
  assert.equal(packImage.status, 0, packImage.stderr);

  c = await startContainerd({ name: 'pack', env: { ...env, WASMTS_COMPONENT_CACHE: path.join(tmp, 'components') } });
  await c.importImage(image);
  const ids = ['pack-hello', 'pack-component', 'pack-exit'];
  const ctrRun = (id: string, args: string[]) =>
    c!.ctr(['run', '--rm', '--runtime', RUNTIME, '--platform', 'wasip1/wasm', IMAGE, id, ...args], {
      timeoutMs: 60_000,
    });

  const hello = await ctrRun('pack-hello', []);
  assert.equal(hello.code, 0, `${hello.stderr}\n${c.log(2000)}`);
  assert.equal(hello.stdout, 'hello from wasm\n');

  // The Wasm child transpiles the component with jco from the package's own node_modules.
  const component = await ctrRun('pack-component', ['/hello.component.wasm']);
  assert.equal(component.code, 0, `${component.stderr}\n${c.log(2000)}`);
  assert.equal(component.stdout, 'hello from wasm\n');

  const exit = await ctrRun('pack-exit', ['/probe.wasm', 'exit', '7']);
  assert.equal(exit.code, 7, `${exit.stderr}\n${c.log(2000)}`);

  // The daemon that served them, and its warm Wasm child, run the installed bundles.
  const daemons = shimDaemons(c.address);
  assert.ok(daemons.length > 0, 'a daemon serves this containerd');
  for (const d of daemons) {
    const argv = fs.readFileSync(`/proc/${d.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(
      argv.some((a) => a.startsWith(`${installed}/dist/`)),
      `daemon ${d.pid} runs ${argv.join(' ')}`,
    );
    for (const kid of descendants([d.pid]).filter((p) => p !== d.pid)) {
      let cmdline: string;
      try {
        cmdline = fs.readFileSync(`/proc/${kid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue; // gone meanwhile
      }
      assert.ok(!cmdline.includes(REPO), `daemon child ${kid} runs the checkout: ${cmdline}`);
    }
  }

  // Nothing left: no task or container, no socket, a daemon holding nothing of the containers.
  assert.equal((await c.ctrOk(['task', 'ls', '-q'])).stdout.trim(), '');
  assert.equal((await c.ctrOk(['container', 'ls', '-q'])).stdout.trim(), '');
  const { address, tmp: ctrdTmp } = c;
  const busy = await settled(
    () => busyDaemonProblems(address, ctrdTmp),
    (b) => b.length === 0,
    8_000,
  );
  assert.deepEqual(busy, []);
  for (const id of ids) assert.ok(!fs.existsSync(socketPathFor(c.address, c.namespace, id)), `socket of ${id} removed`);
  const containerdTmp = c.tmp;
  await c.stop();
  c = undefined;
  assert.deepEqual(
    listProcesses(new RegExp(escapeRegExp(prefix))).map((p) => p.cmdline),
    [],
    'no process of the installed package',
  );
  assert.deepEqual(listMounts(containerdTmp), []);
});
