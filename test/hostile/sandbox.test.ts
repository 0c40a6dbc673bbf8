// The sandbox holds: a module reads and writes only its rootfs and its
// declared mounts (`..`, absolute and relative symlinks planted in the
// rootfs, read-only and read-write binds, a read-only root), runs as the
// spec's process.user, cannot reach the shim's socket and files, and sees
// exactly the spec's environment (plus PWD, plus TRACEPARENT/TRACECONTEXT when tracing is
// on) and nothing of containerd's.
//
// Symlinks: packImage (src/image/oci.ts) copies files and follows links, so
// the planted rootfs is a host directory given to `ctr run --rootfs` (or as
// root.path of a spec given to `ctr run --config`). ctr 1.6 has no --user on
// run: the user comes from a spec file (--config) or `ctr task exec --user`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  credentials,
  daemonKey,
  e2e,
  listMounts,
  makePlantedRootfs,
  MODULES,
  openLine,
  PLANTED_ABSOLUTE_INSIDE,
  PLANTED_ESCAPES,
  PLANTED_INSIDE,
  PLANTED_LAST_LINKS,
  PLANTED_OPEN_ARGS,
  PLATFORM,
  RUNTIME,
  settledProblems,
  setupSuite,
  sleep,
  type Suite,
  until,
  E2E_TEST_TIMEOUT as T,
} from '../harness/index.js';
import { daemonPaths, isReadySocketName } from '../../src/handoff/handoff.js';

const CANARY = 'WASMTS_CONTAINERD_CANARY';
const CANARY_VALUE = 'containerd-env-must-not-reach-modules';
const NOBODY = 65534;

let h: Suite;
/** Host files the module must never see or touch. */
let secretDir: string;
/** A rootfs with links planted in it. */
let planted: string;

before(
  async () => {
    const imageFiles = path.join(os.tmpdir(), `wasmts-hsand-image-${process.pid}`);
    fs.mkdirSync(path.join(imageFiles, 'data'), { recursive: true });
    fs.mkdirSync(path.join(imageFiles, 'scratch'));
    fs.chmodSync(path.join(imageFiles, 'scratch'), 0o777);
    fs.writeFileSync(path.join(imageFiles, 'data', 'greeting.txt'), 'greetings from the hostile image\n');
    try {
      const files = [
        { src: path.join(imageFiles, 'data'), dest: 'data' },
        { src: path.join(imageFiles, 'scratch'), dest: 'scratch' },
      ];
      h = await setupSuite('hsand', {
        env: { [CANARY]: CANARY_VALUE },
        imageOptions: { files: () => files, env: ['PATH=/'] },
      });
    } finally {
      fs.rmSync(imageFiles, { recursive: true, force: true });
    }
    secretDir = path.join(h.c.tmp, 'host-secret');
    fs.mkdirSync(secretDir);
    fs.writeFileSync(path.join(secretDir, 'secret.txt'), 'host secret\n');
    planted = makePlantedRootfs(path.join(h.c.tmp, 'planted-rootfs'), path.join(MODULES, 'probe.wasm'), secretDir);
  },
  { timeout: 120_000 },
);

after(async () => {
  await h?.teardown();
});

/** A spec file for `ctr run --config`: only what the shim reads, plus what ctr needs. */
function specFile(
  name: string,
  spec: {
    args: string[];
    env?: string[];
    cwd?: string;
    user?: object;
    root: string;
    readonly?: boolean;
    mounts?: object[];
  },
): string {
  const file = path.join(h.c.tmp, `${name}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      ociVersion: '1.0.2',
      process: {
        args: spec.args,
        env: spec.env ?? ['PATH=/'],
        cwd: spec.cwd ?? '/',
        ...(spec.user ? { user: spec.user } : {}),
      },
      root: { path: spec.root, readonly: spec.readonly ?? false },
      mounts: spec.mounts ?? [],
      linux: {},
    }),
  );
  return file;
}

/** A test body with fresh ids for `labels`, cleaned up after it (the harness's e2e wrapper). */
const withCleanup = (labels: string[], body: (ids: string[]) => Promise<void>) =>
  e2e(
    () => h,
    labels,
    (_t, _s, ids) => body(ids),
  );

describe('files outside the rootfs', () => {
  test(
    'symlinks planted in the rootfs (absolute, relative, in any component) never lead out',
    T,
    withCleanup(['links'], async ([id]) => {
      const r = await h.run(PLANTED_OPEN_ARGS, { id, rootfs: planted });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /host secret/);
      assert.doesNotMatch(r.stdout, /root:x:0:0/);
      const line = (p: string) => openLine(r.stdout, p);
      for (const p of PLANTED_ESCAPES) assert.match(line(p), /: fail /, `${p} must not open: ${line(p)}`);
      // a link in the last component is resolved inside the rootfs ("/" re-rooted, ".." clamped there)
      for (const p of PLANTED_LAST_LINKS) assert.match(line(p), /: (fail |ok rerooted inside$)/);
      for (const p of PLANTED_INSIDE) assert.match(line(p), /: ok inside$/, `${p} must open: ${line(p)}`);
      // An absolute link in an earlier component is refused outright (src/child/confine.ts),
      // even when it points inside the image (runc would follow it there): safe, if stricter.
      assert.match(line(PLANTED_ABSOLUTE_INSIDE), /: (ok inside|fail Capabilities insufficient)$/);
    }),
  );

  test(
    'writes through planted links or ".." never land outside',
    T,
    withCleanup(['wlinks', 'wdots', 'wrel', 'wok'], async ([a, b, c, ok]) => {
      const before = fs.readdirSync(secretDir).sort();
      const w1 = await h.run(['/probe.wasm', 'write', '/abs/planted.txt', 'x'], { id: a, rootfs: planted });
      const w2 = await h.run(['/probe.wasm', 'write', `../../../../../../../../..${secretDir}/planted2.txt`, 'x'], {
        id: b,
        rootfs: planted,
      });
      const w3 = await h.run(['/probe.wasm', 'write', '/d/rel/planted3.txt', 'x'], { id: c, rootfs: planted });
      assert.deepEqual(
        fs.readdirSync(secretDir).sort(),
        before,
        `host dir changed: ${[w1, w2, w3].map((r) => r.stdout + r.stderr).join(' | ')}`,
      );
      assert.notEqual(w1.code, 0, 'writing through /abs must fail');
      assert.notEqual(w3.code, 0, 'writing through /d/rel must fail');
      // ".." is clamped at the module's "/": that write landed inside the rootfs (or failed)
      if (w2.code === 0) assert.ok(fs.existsSync(path.join(planted, secretDir, 'planted2.txt')));
      const w4 = await h.run(['/probe.wasm', 'write', '/d/ok/written.txt', 'inside'], { id: ok, rootfs: planted });
      assert.equal(w4.code, 0, w4.stderr);
      assert.equal(fs.readFileSync(path.join(planted, 'd', 'sub', 'written.txt'), 'utf8'), 'inside');
    }),
  );

  test(
    '".." and absolute paths stay in an image rootfs too',
    T,
    withCleanup(['escape'], async ([id]) => {
      const r = await h.run(
        ['/probe.wasm', 'escape', `../../../../../..${secretDir}/secret.txt`, `${secretDir}/secret.txt`],
        { id },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /host secret|root:x:0:0/);
    }),
  );

  test(
    'a read-only bind mount cannot be written; a read-write one can; the binds are gone afterwards',
    T,
    withCleanup(['ro', 'rw', 'roread'], async ([ro, rw, roread]) => {
      const roDir = path.join(h.c.tmp, 'bind-ro');
      const rwDir = path.join(h.c.tmp, 'bind-rw');
      fs.mkdirSync(roDir);
      fs.mkdirSync(rwDir);
      fs.writeFileSync(path.join(roDir, 'given.txt'), 'given read-only\n');
      const r1 = await h.run(['/probe.wasm', 'write', '/ro/new.txt', 'must not be written'], {
        id: ro,
        flags: ['--mount', `type=bind,src=${roDir},dst=/ro,options=rbind:ro`],
      });
      assert.notEqual(r1.code, 0, `write to the ro bind succeeded: ${r1.stdout}`);
      assert.match(
        r1.stderr,
        /write \/ro\/new\.txt: (Read-only file system|Permission denied|Capabilities insufficient|Operation not permitted)/,
      );
      assert.equal(fs.existsSync(path.join(roDir, 'new.txt')), false);
      const r2 = await h.run(['/probe.wasm', 'cat', '/ro/given.txt'], {
        id: roread,
        flags: ['--mount', `type=bind,src=${roDir},dst=/ro,options=rbind:ro`],
      });
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(r2.stdout, 'given read-only\n');
      const r3 = await h.run(['/probe.wasm', 'write', '/rw/new.txt', 'written through the bind'], {
        id: rw,
        flags: ['--mount', `type=bind,src=${rwDir},dst=/rw,options=rbind:rw`],
      });
      assert.equal(r3.code, 0, r3.stderr);
      assert.equal(fs.readFileSync(path.join(rwDir, 'new.txt'), 'utf8'), 'written through the bind');
      assert.deepEqual(listMounts(roDir).concat(listMounts(rwDir)), []);
      assert.deepEqual(listMounts(path.join(h.c.state)), [], 'no mount left in the state dir');
    }),
  );

  // Container.create mounts binds under the spec's root.path, but teardown
  // (Container.destroy, the create-failure path and the `delete` action) calls
  // unmountRootfs(bundle), which only looks below <bundle>/rootfs.
  test(
    'binds into a rootfs outside the bundle (ctr run --rootfs) are unmounted afterwards',
    {
      ...T,
    },
    withCleanup(['rootfsbind'], async ([id]) => {
      const root = path.join(h.c.tmp, 'outside-rootfs');
      const src = path.join(h.c.tmp, 'outside-bind-src');
      fs.mkdirSync(root);
      fs.mkdirSync(src);
      fs.copyFileSync(path.join(MODULES, 'probe.wasm'), path.join(root, 'probe.wasm'));
      fs.writeFileSync(path.join(src, 'f.txt'), 'bound\n');
      const r = await h.run(['/probe.wasm', 'cat', '/m/f.txt'], {
        id,
        rootfs: root,
        flags: ['--mount', `type=bind,src=${src},dst=/m,options=rbind:ro`],
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'bound\n');
      const left = await until(
        'the bind to be unmounted',
        () => listMounts(root).length === 0 || undefined,
        5_000,
      ).catch(() => false);
      const mounts = listMounts(root).map((m) => m.mountPoint);
      // leave no mount to the harness either way
      for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
      assert.ok(left, `mounts left: ${mounts.join(', ')}`);
    }),
  );

  // ctr 1.6 (like CRI for readOnlyRootFilesystem) passes a writable snapshot and
  // sets root.readonly: "the runtime remounts it as read-only".
  test(
    'ctr run --read-only: the module cannot write its rootfs',
    {
      ...T,
    },
    withCleanup(['roimage'], async ([id]) => {
      const r = await h.run(['/probe.wasm', 'write', '/data/new.txt', 'x'], { id, flags: ['--read-only'] });
      assert.notEqual(r.code, 0, `wrote into a read-only rootfs: ${r.stdout}`);
    }),
  );

  test(
    'a spec with root.readonly: the module cannot write its rootfs',
    {
      ...T,
    },
    withCleanup(['rootro'], async ([id]) => {
      const root = path.join(h.c.tmp, 'readonly-rootfs');
      fs.mkdirSync(root);
      fs.copyFileSync(path.join(MODULES, 'probe.wasm'), path.join(root, 'probe.wasm'));
      const cfg = specFile('rootro', { args: ['/probe.wasm', 'write', '/new.txt', 'x'], root, readonly: true });
      const r = await h.run([], { id, config: cfg });
      const wrote = fs.existsSync(path.join(root, 'new.txt'));
      assert.equal(wrote, false, `the module wrote ${root}/new.txt (exit ${r.code})`);
      assert.notEqual(r.code, 0);
    }),
  );
});

describe('who the module runs as', () => {
  test(
    "the child runs as the spec's process.user (uid, gid, additional gids)",
    T,
    withCleanup(['user'], async ([id]) => {
      const cfg = specFile('user', {
        args: ['/probe.wasm', 'daemon', '200'],
        root: planted,
        user: { uid: NOBODY, gid: NOBODY, additionalGids: [4242, 4343] },
      });
      const run = h.c.ctrSpawn(['run', '--rm', '--runtime', RUNTIME, '--config', cfg, id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const pid = await until('the task to run', async () => {
          const r = await h.c.ctr(['task', 'ls']);
          const m = new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(r.stdout);
          return m ? Number(m[1]) : undefined;
        });
        const who = credentials(pid);
        assert.deepEqual(who.uid, [NOBODY, NOBODY, NOBODY, NOBODY], 'real, effective, saved, fs uid');
        assert.deepEqual(who.gid, [NOBODY, NOBODY, NOBODY, NOBODY], 'real, effective, saved, fs gid');
        assert.deepEqual(who.groups.sort(), [4242, 4343]);
        // the daemon itself stays root (it has to unmount and signal)
        assert.equal(credentials(h.shimPid(id)).uid[1], 0);
      } finally {
        await h.c.ctr(['task', 'kill', '-s', 'SIGKILL', id]).catch(() => undefined);
        await new Promise((r) => run.on('close', r));
      }
    }),
  );

  // containerd makes each bundle directory 0700 (root only), and node:wasi
  // resolves every guest path to a host path from "/" (uvwasi realpaths the
  // preopen, so no fd-relative lookup): once the child has dropped to the
  // spec's user it cannot traverse <bundle>/ to reach <bundle>/rootfs, and
  // every file of its own image is EACCES. (runc pivots into the rootfs, so
  // the bundle's mode never matters there.)
  test(
    'as that user, the module uses its own rootfs: reads the image, owns what it creates, root-only files stay closed',
    {
      ...T,
    },
    withCleanup(['userimg'], async ([id]) => {
      await h.c.ctrOk([
        'run',
        '-d',
        '--null-io',
        '--runtime',
        RUNTIME,
        '--platform',
        PLATFORM,
        h.image,
        id,
        '/probe.wasm',
        'daemon',
        '500',
      ]);
      const exec = (execId: string, args: string[]) =>
        h.c.ctr(['task', 'exec', '--exec-id', execId, '--user', `${NOBODY}:${NOBODY}`, id, '/probe.wasm', ...args]);
      const read = await exec('read', ['cat', '/data/greeting.txt']);
      assert.equal(read.code, 0, `reading its own image as uid ${NOBODY}: ${read.stderr}`);
      assert.equal(read.stdout, 'greetings from the hostile image\n');
      const write = await exec('write', ['write', '/scratch/mine.txt', 'mine']);
      assert.equal(write.code, 0, write.stderr);
      const st = fs.statSync(path.join(h.c.bundleDir(id), 'rootfs', 'scratch', 'mine.txt'));
      assert.deepEqual([st.uid, st.gid], [NOBODY, NOBODY]);
      const deny = await exec('deny', ['write', '/data/greeting.txt', 'overwritten']);
      assert.notEqual(deny.code, 0);
      assert.match(deny.stderr, /Permission denied/);
    }),
  );

  test(
    "ctr task exec --user: the exec's child runs as that user",
    T,
    withCleanup(['execuser'], async ([id]) => {
      const cfg = specFile('execuser', { args: ['/probe.wasm', 'daemon', '500'], root: planted });
      const run = h.c.ctrSpawn(['run', '--rm', '--runtime', RUNTIME, '--config', cfg, id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        await until('the task to run', async () =>
          new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm').test((await h.c.ctr(['task', 'ls'])).stdout),
        );
        await h.c.ctrOk([
          'task',
          'exec',
          '-d',
          '--exec-id',
          'as-nobody',
          '--user',
          `${NOBODY}:${NOBODY}`,
          id,
          '/probe.wasm',
          'daemon',
          '500',
        ]);
        const pid = await until(
          'the exec to run',
          async () => {
            const r = await h.c.ctr(['task', 'ps', id]);
            const pids = r.stdout
              .split('\n')
              .slice(1)
              .map((l) => Number(l.trim().split(/\s+/)[0]))
              .filter((p) => p > 0);
            return pids.find((p) => {
              try {
                return credentials(p).uid[0] === NOBODY;
              } catch {
                return false;
              }
            });
          },
          10_000,
        );
        assert.deepEqual(credentials(pid).uid, [NOBODY, NOBODY, NOBODY, NOBODY]);
      } finally {
        await h.c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]).catch(() => undefined);
        await new Promise((r) => run.on('close', r));
      }
    }),
  );
});

describe("the shim's socket and files", () => {
  test(
    'socket, address, shim.pid, init.pid, exec pid files: owner-only; other users cannot connect',
    T,
    withCleanup(['files'], async ([id]) => {
      const cfg = specFile('files', { args: ['/probe.wasm', 'daemon', '500'], root: planted });
      const run = h.c.ctrSpawn(['run', '--rm', '--runtime', RUNTIME, '--config', cfg, id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        await until('the task to run', async () =>
          new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm').test((await h.c.ctr(['task', 'ls'])).stdout),
        );
        await h.c.ctrOk(['task', 'exec', '-d', '--exec-id', 'e1', id, '/probe.wasm', 'daemon', '500']);
        const bundle = h.c.bundleDir(id);
        const socket = fs.readFileSync(path.join(bundle, 'address'), 'utf8').replace(/^unix:\/\//, '');
        await until('the exec pid file', () => fs.existsSync(path.join(bundle, 'exec-e1.pid')), 5_000);
        const ours = [socket, ...['address', 'shim.pid', 'init.pid', 'exec-e1.pid'].map((f) => path.join(bundle, f))];
        for (const f of ours) {
          const st = fs.statSync(f);
          assert.equal(st.uid, 0, `${f} owned by ${st.uid}`);
          assert.equal(
            st.mode & 0o077,
            0,
            `${f} has mode ${(st.mode & 0o777).toString(8)}: group or others may access it`,
          );
        }
        assert.ok(fs.statSync(socket).isSocket());
        // another user: connecting and reading fail
        const probe = spawnSync(
          process.execPath,
          [
            '-e',
            `
        const net = require('node:net'); const fs = require('node:fs');
        const out = {};
        for (const f of ${JSON.stringify(ours.slice(1))}) { try { fs.readFileSync(f); out[f] = 'read'; } catch (e) { out[f] = e.code; } }
        const s = net.connect(${JSON.stringify(socket)});
        s.on('connect', () => { out.socket = 'connected'; console.log(JSON.stringify(out)); process.exit(0); });
        s.on('error', (e) => { out.socket = e.code; console.log(JSON.stringify(out)); process.exit(0); });
      `,
          ],
          { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 10_000 },
        );
        assert.equal(probe.status, 0, probe.stderr);
        const seen = JSON.parse(probe.stdout) as Record<string, string>;
        for (const [what, result] of Object.entries(seen))
          assert.match(result, /^E(ACCES|PERM)$/, `${what} as uid ${NOBODY}: ${result}`);
        // and the daemon's state dir, its ready sockets (which become container sockets) and control socket are owner-only too
        const key = daemonKey(h.shimPid(id));
        assert.ok(key, 'the daemon serves a key');
        const { dir, control } = daemonPaths(key);
        assert.equal(
          fs.statSync(dir).mode & 0o777,
          0o700,
          `${dir}: mode ${(fs.statSync(dir).mode & 0o777).toString(8)}`,
        );
        const sockets = [
          control,
          ...fs
            .readdirSync(dir)
            .filter(isReadySocketName)
            .map((n) => path.join(dir, n)),
        ];
        assert.ok(sockets.length >= 2, `control and ready sockets in ${dir}: ${fs.readdirSync(dir).join(', ')}`);
        for (const f of sockets) {
          const st = fs.statSync(f);
          assert.ok(st.isSocket(), f);
          assert.equal(st.uid, 0, `${f} owned by ${st.uid}`);
          assert.equal(st.mode & 0o077, 0, `${f}: mode ${(st.mode & 0o777).toString(8)}`);
        }
      } finally {
        await h.c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]).catch(() => undefined);
        await new Promise((r) => run.on('close', r));
      }
    }),
  );
});

describe('the environment the module sees', () => {
  const SPEC_ENV = ['PATH=/', 'FOO=bar baz', 'EMPTY=', 'EQUALS=a=b=c', 'UNICODE=ünï'];

  async function specEnvOf(id: string): Promise<string[]> {
    const info = JSON.parse((await h.c.ctrOk(['container', 'info', id])).stdout) as {
      Spec: { process: { env: string[] } };
    };
    return info.Spec.process.env;
  }

  test(
    "exactly the spec's process.env plus PWD: nothing of containerd's environment",
    T,
    withCleanup(['env', 'envpwd'], async ([a, b]) => {
      // containerd really has the canary (so its shims do too)
      assert.match(fs.readFileSync(`/proc/${h.c.pid}/environ`, 'utf8'), new RegExp(`${CANARY}=${CANARY_VALUE}`));
      await h.c.ctrOk([
        'container',
        'create',
        '--runtime',
        RUNTIME,
        '--config',
        specFile('env', { args: ['/probe.wasm', 'env'], env: SPEC_ENV, cwd: '/d', root: planted }),
        a,
      ]);
      const spec = await specEnvOf(a);
      assert.deepEqual(spec, SPEC_ENV, 'ctr kept the spec env as written');
      const r = await h.c.ctrOk(['task', 'start', a]); // attached: prints the output, deletes the task
      assert.deepEqual(r.stdout.split('\n').filter(Boolean), [...SPEC_ENV, 'PWD=/d']);
      assert.doesNotMatch(r.stdout, new RegExp(CANARY));
      // a spec that sets PWD itself gets no second one
      const withPwd = [...SPEC_ENV, 'PWD=/elsewhere'];
      await h.c.ctrOk([
        'container',
        'create',
        '--runtime',
        RUNTIME,
        '--config',
        specFile('envpwd', { args: ['/probe.wasm', 'env'], env: withPwd, cwd: '/d', root: planted }),
        b,
      ]);
      const r2 = await h.c.ctrOk(['task', 'start', b]);
      assert.deepEqual(r2.stdout.split('\n').filter(Boolean), withPwd);
    }),
  );

  test(
    'the image route: the module env is the spec ctr built (image env + --env) plus PWD',
    T,
    withCleanup(['imgenv'], async ([id]) => {
      const r = await h.run(['/probe.wasm', 'env'], { id, flags: ['--env', 'FROM_CTR=1'] });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n').filter(Boolean);
      assert.ok(lines.includes('FROM_CTR=1') && lines.includes('PATH=/'), r.stdout);
      assert.deepEqual(
        lines.filter((l) => !/^(PATH|FROM_CTR|PWD)=/.test(l)),
        [],
        `unexpected variables: ${r.stdout}`,
      );
      assert.ok(lines.includes('PWD=/'));
    }),
  );

  test(
    "with tracing on: the spec's env plus PWD plus TRACEPARENT and TRACECONTEXT, still nothing of containerd's",
    { timeout: 90_000 },
    async () => {
      // an endpoint nobody answers: spans are dropped, the module still gets its context
      const dead = net.createServer();
      await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
      const port = (dead.address() as net.AddressInfo).port;
      await new Promise<void>((r) => dead.close(() => r()));
      const traced = await setupSuite('hsandtr', {
        env: {
          [CANARY]: CANARY_VALUE,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
          OTEL_SERVICE_NAME: 'canary-service',
        },
        imageOptions: { files: () => [], env: ['PATH=/'] },
      });
      try {
        const root = path.join(traced.c.tmp, 'rootfs');
        fs.mkdirSync(root);
        fs.copyFileSync(path.join(MODULES, 'probe.wasm'), path.join(root, 'probe.wasm'));
        const cfg = path.join(traced.c.tmp, 'spec.json');
        fs.writeFileSync(
          cfg,
          JSON.stringify({
            ociVersion: '1.0.2',
            process: { args: ['/probe.wasm', 'env'], env: SPEC_ENV, cwd: '/' },
            root: { path: root },
            linux: {},
          }),
        );
        const id = traced.id('env');
        const r = await traced.run([], { id, config: cfg });
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.split('\n').filter(Boolean);
        // The trace context, in both carriers the module may read (the spec's TRACEPARENT, runwasi's TRACECONTEXT).
        const tc = lines.filter((l) => /^TRACE(CONTEXT|PARENT)=/.test(l));
        assert.equal(tc.length, 2, r.stdout);
        for (const l of tc) assert.match(l, /^TRACE(CONTEXT|PARENT)=00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
        assert.equal(tc[0].split('=')[1], tc[1].split('=')[1], r.stdout);
        assert.deepEqual(
          lines.filter((l) => !/^TRACE(CONTEXT|PARENT)=/.test(l)),
          [...SPEC_ENV, 'PWD=/'],
        );
        assert.doesNotMatch(r.stdout, /OTEL_|canary/i);
        assert.deepEqual(await settledProblems(traced.c, [id]), []);
      } finally {
        await traced.teardown();
      }
    },
  );
});

test('nothing is left behind', T, async () => {
  await sleep(100);
  assert.deepEqual(await settledProblems(h.c, h.ids), []);
});
