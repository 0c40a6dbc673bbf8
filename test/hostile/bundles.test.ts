// Hostile bundles and modules. Two routes in:
//  - config.json that no ctr would write (malformed, missing, huge, no
//    `process`, wrong types): Create over our own ttrpc client against a shim
//    daemon started by hand, as containerd would start it;
//  - entrypoints and modules that are wrong or misbehave (missing, a
//    directory, not Wasm, truncated, unresolvable imports; traps, spins,
//    floods stdout, runs out of memory): `ctr run` with an image that ships them.
// Each gets a clear error or the right exit status, and nothing is left behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import {
  census,
  censusProblems,
  collect,
  e2e,
  fdCount,
  listMounts,
  MODULES,
  PLATFORM,
  REPO,
  RUNTIME,
  settledProblems,
  setupSuite,
  sleep,
  type Suite,
  until,
  wasmChildrenUnder,
  E2E_TEST_TIMEOUT as T,
} from '../harness/index.js';
import { packImage } from '../../src/image/oci.js';
import { startHandDaemon, tinyWasm, type HandDaemon } from './helpers.js';
import { Code, codeName, TtrpcError } from '../../src/ttrpc/status.js';

const PROBE = path.join(MODULES, 'probe.wasm');
/** probe.wasm linked with a 64 MiB memory maximum: `oom` hits the limit in well under a second. */
const PROBE_64M = 'probe-64m.wasm';

let s: Suite;
let image: string;
let stage: string;

/** Builds probe.c with a declared memory maximum (the module's own limit, which V8 enforces). */
function buildSmallMemoryProbe(out: string): void {
  const sysroot = process.env.WASI_SYSROOT ? [`--sysroot=${process.env.WASI_SYSROOT}`] : [];
  const r = spawnSync(
    process.env.CLANG || 'clang',
    [
      '--target=wasm32-wasi',
      ...sysroot,
      '-O2',
      `-Wl,--max-memory=${64 << 20}`,
      path.join(REPO, 'test', 'modules', 'probe.c'),
      '-o',
      out,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`clang failed building ${out}: ${r.stderr}`);
}

before(
  async () => {
    s = await setupSuite('hbund');
    stage = path.join(s.c.tmp, 'hostile-modules');
    const files = path.join(stage, 'files');
    fs.mkdirSync(path.join(files, 'dir.wasm'), { recursive: true });
    fs.writeFileSync(path.join(files, 'dir.wasm', '.keep'), '');
    const write = (name: string, data: Uint8Array | string) => fs.writeFileSync(path.join(files, name), data);
    write('not-wasm.wasm', '#!/bin/sh\necho this is a shell script\n');
    write('empty.wasm', '');
    write('truncated.wasm', fs.readFileSync(PROBE).subarray(0, Math.floor(fs.statSync(PROBE).size / 2)));
    write('missing-import.wasm', tinyWasm({ imports: [['wasi_snapshot_preview1', 'no_such_call']] }));
    write('wasi-unstable.wasm', tinyWasm({ imports: [['wasi_unstable', 'fd_write']] }));
    write('env-import.wasm', tinyWasm({ imports: [['env', 'host_function']] }));
    write('no-start.wasm', tinyWasm({ exportAs: 'main' }));
    write('no-memory.wasm', tinyWasm({ memory: false }));
    write('tiny-trap.wasm', tinyWasm({ body: 'trap' }));
    write('tiny-ok.wasm', tinyWasm());
    buildSmallMemoryProbe(path.join(files, PROBE_64M));
    fs.copyFileSync(path.join(MODULES, 'probe.native'), path.join(files, 'probe.native'));
    image = 'docker.io/wasmts-hostile/modules:v1';
    const tar = path.join(stage, 'modules.tar');
    await packImage({
      module: PROBE,
      files: fs.readdirSync(files).map((f) => ({ src: path.join(files, f), dest: f })),
      ref: image,
      env: ['PATH=/'],
      output: tar,
    });
    await s.c.importImage(tar, { timeoutMs: 30_000 });
  },
  { timeout: 120_000 },
);

after(async () => {
  await s?.teardown();
});

// ---------------------------------------------------------------------------
// config.json: Create against a daemon started by hand

describe('config.json that no ctr would write (Create over ttrpc)', () => {
  let d: HandDaemon;
  let n = 0;
  const out = () => path.join(s.c.tmp, `hb-out-${n}.txt`);

  before(async () => {
    d = await startHandDaemon(s.c, 'hb-daemon');
  });
  after(async () => {
    await d?.stop();
  });

  /** A bundle with a rootfs holding probe.wasm, and config.json written as given (string: raw bytes; undefined: none). */
  function bundle(config: unknown, raw?: string | Buffer): { id: string; dir: string } {
    const id = `hb-case-${++n}`;
    const dir = s.c.bundleDir(id);
    fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
    fs.copyFileSync(PROBE, path.join(dir, 'rootfs', 'probe.wasm'));
    if (raw !== undefined) fs.writeFileSync(path.join(dir, 'config.json'), raw);
    else if (config !== undefined) fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    return { id, dir };
  }

  async function createFails(
    b: { id: string; dir: string },
    pattern: RegExp,
    code = Code.InvalidArgument,
    extra: { stdout?: string; terminal?: boolean } = {},
  ): Promise<void> {
    let err: unknown;
    try {
      await d.task.create({
        id: b.id,
        bundle: b.dir,
        stdout: extra.stdout ?? `file://${out()}`,
        stderr: `file://${out()}`,
        terminal: extra.terminal ?? false,
      });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof TtrpcError, `Create of ${b.id} should fail, got ${String(err)}`);
    assert.equal(codeName(err.code), codeName(code), err.message);
    assert.match(err.message, pattern);
    assert.match(err.message, new RegExp(`container ${b.id}:`), 'the error names the container');
    // the daemon forgot it: a retry is not AlreadyExists, State is NotFound
    await assert.rejects(d.task.state({ id: b.id }), (e: TtrpcError) => e.code === Code.NotFound);
    assert.deepEqual(listMounts(b.dir), []);
    fs.rmSync(b.dir, { recursive: true, force: true });
  }

  async function runs(b: { id: string; dir: string }, status: number): Promise<string> {
    const file = out();
    const { pid } = await d.task.create({
      id: b.id,
      bundle: b.dir,
      stdout: `file://${file}`,
      stderr: `file://${file}`,
    });
    assert.ok(pid > 0);
    await d.task.start({ id: b.id });
    const w = await d.task.wait({ id: b.id }, { timeoutMs: 20_000 });
    assert.equal(w.exitStatus, status);
    const del = await d.task.delete({ id: b.id });
    assert.equal(del.exitStatus, status);
    // Delete answers before the daemon unmounted and left its DeleteResponse; containerd removes the
    // bundle only after Shutdown, which waits for that. The hand socket serves on, so wait for the file.
    await until(`${b.id}'s cleanup`, () => fs.existsSync(path.join(b.dir, 'wasmts-delete-response')), 10_000);
    fs.rmSync(b.dir, { recursive: true, force: true });
    return fs.readFileSync(file, 'utf8');
  }

  const proc = (p: Record<string, unknown>) => ({
    ociVersion: '1.0.2',
    process: { args: ['/probe.wasm', 'exit', '7'], cwd: '/', ...p },
    root: { path: 'rootfs' },
  });

  test('a well-formed bundle runs (the control case)', T, async () => {
    assert.equal(await runs(bundle(proc({})), 7), '');
  });

  test('config.json malformed, missing, a directory, or not an object', T, async () => {
    await createFails(bundle(undefined, '{"process": {"args": ["/probe.wasm"'), /config\.json is not valid JSON/);
    await createFails(bundle(undefined, Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x80])), /config\.json is not valid JSON/);
    await createFails(bundle(undefined, ''), /config\.json is not valid JSON/);
    await createFails(bundle(undefined), /cannot read .*config\.json: ENOENT/);
    const dirCase = bundle(undefined);
    fs.mkdirSync(path.join(dirCase.dir, 'config.json'));
    await createFails(dirCase, /cannot read .*config\.json: EISDIR/);
    for (const v of ['[]', 'null', '42', '"process"', 'true'])
      await createFails(bundle(undefined, v), /config\.json must hold a JSON object/);
  });

  test('a huge config.json: over the limit is refused without reading it; a large valid one runs', T, async () => {
    const big = bundle(undefined);
    const fd = fs.openSync(path.join(big.dir, 'config.json'), 'w');
    fs.ftruncateSync(fd, (16 << 20) + 1); // sparse: the daemon must not try to parse it
    fs.closeSync(fd);
    const t0 = Date.now();
    await createFails(big, /config\.json is 16777217 bytes, over the 16777216-byte limit/);
    assert.ok(Date.now() - t0 < 2_000, 'refused quickly');
    // 12 MB of annotations: parsed and run
    const annotations: Record<string, string> = {};
    for (let i = 0; i < 12_000; i++) annotations[`hostile.example/pad-${i}`] = 'x'.repeat(1000);
    assert.equal(await runs(bundle({ ...proc({}), annotations }), 7), '');
  });

  test('no `process`, or a `process` of the wrong shape', T, async () => {
    await createFails(bundle({ ociVersion: '1.0.2', root: { path: 'rootfs' } }), /has no "process" object/);
    for (const p of [null, [], 'probe.wasm', 7]) await createFails(bundle({ process: p }), /has no "process" object/);
    for (const args of [undefined, [], [1], 'probe.wasm', [null], ['/probe.wasm', 2]]) {
      await createFails(bundle(proc({ args })), /process\.args must be a non-empty list of strings/);
    }
    for (const env of ['A=1', [1], [null], { A: '1' }])
      await createFails(bundle(proc({ env })), /process\.env must be a list of strings/);
    for (const cwd of ['relative', 7, ''])
      await createFails(bundle(proc({ cwd })), /process\.cwd must be an absolute path/);
    for (const user of [
      { uid: '0', gid: 0 },
      { uid: -1, gid: 0 },
      { uid: 0 },
      { uid: 2 ** 32, gid: 0 },
      'root',
      null,
    ]) {
      await createFails(bundle(proc({ user })), /process\.user needs numeric uid and gid/);
    }
    await createFails(
      bundle(proc({ user: { uid: 0, gid: 0, additionalGids: ['wheel'] } })),
      /additionalGids must be numbers/,
    );
  });

  test('root, mounts, annotations or linux of the wrong shape: the field is named', T, async () => {
    const cases: [extra: Record<string, unknown>, pattern: RegExp][] = [
      [{ root: { path: 7 } }, /config\.json: root\.path must be a string/],
      [{ mounts: { destination: '/data' } }, /config\.json: mounts must be a list of objects/],
      [
        { mounts: [{ destination: '/a', type: 'bind', source: '/tmp' }, {}] },
        /mounts\[1\]\.destination must be a string/,
      ],
      [{ annotations: { 'io.example/n': 1 } }, /config\.json: annotations must map strings to strings/],
      [{ linux: { cgroupsPath: ['/a'] } }, /linux\.cgroupsPath must be a string/],
      [{ linux: { resources: { memory: { limit: '1G' } } } }, /linux\.resources\.memory\.limit must be .*not "1G"/],
      [{ linux: { resources: { cpu: { shares: 1 << 20 } } } }, /linux\.resources\.cpu\.shares must be 0 to 262144/],
    ];
    for (const [extra, pattern] of cases) await createFails(bundle({ ...proc({}), ...extra }), pattern);
  });

  test('Update with resources that are not LinuxResources in range is refused; the task runs on', T, async () => {
    const b = bundle(proc({ args: ['/probe.wasm', 'daemon', '50'] }));
    const file = out();
    await d.task.create({ id: b.id, bundle: b.dir, stdout: `file://${file}`, stderr: `file://${file}` });
    await d.task.start({ id: b.id });
    const typeUrl = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';
    const update = (value: string, type = typeUrl) =>
      d.task.update({ id: b.id, resources: { typeUrl: type, value: Buffer.from(value) } });
    const cases: [value: string, pattern: RegExp, type?: string][] = [
      ['{"memory": {"limit": -2}}', /resources\.memory\.limit must be -1 \(no limit\) or a byte count, not -2/],
      ['{"cpu": {"quota": 10}}', /resources\.cpu\.quota must be -1 \(no limit\), 0 \(unchanged\) or at least 1000/],
      ['{"pids": []}', /resources\.pids must be an object/],
      ['[1]', /resources must be a JSON object/],
      ['{"cpu":', /resources are not valid JSON/],
      [
        '{}',
        /resources have type .*WindowsResources/,
        'types.containerd.io/opencontainers/runtime-spec/1/WindowsResources',
      ],
    ];
    for (const [value, pattern, type] of cases) {
      await assert.rejects(update(value, type), (e: unknown) => {
        assert.ok(e instanceof TtrpcError, String(e));
        assert.equal(codeName(e.code), codeName(Code.InvalidArgument), e.message);
        assert.match(e.message, pattern);
        assert.match(e.message, new RegExp(`container ${b.id}:`));
        return true;
      });
    }
    await update('{"memory": {"limit": -1}, "cpu": {"shares": 512}, "pids": {"limit": 64}}'); // in range: taken
    assert.equal((await d.task.state({ id: b.id })).status, Status.RUNNING);
    await d.task.kill({ id: b.id, signal: 9 });
    assert.equal((await d.task.wait({ id: b.id }, { timeoutMs: 20_000 })).exitStatus, 137);
    await d.task.delete({ id: b.id });
    await until(`${b.id}'s cleanup`, () => fs.existsSync(path.join(b.dir, 'wasmts-delete-response')), 10_000);
    fs.rmSync(b.dir, { recursive: true, force: true });
  });

  test('a root, mounts or stdio that cannot be used', T, async () => {
    await createFails(
      bundle({ ...proc({}), root: { path: 'no-such-rootfs' } }),
      /module \/probe\.wasm not found in the container's rootfs/,
    );
    await createFails(
      bundle({ ...proc({}), mounts: [{ destination: '/data', type: 'bind', options: ['rbind'] }] }),
      /bind mount .* needs a source and an absolute destination/,
    );
    await createFails(
      bundle({ ...proc({}), mounts: [{ destination: 'data', source: s.c.tmp, type: 'bind' }] }),
      /needs a source and an absolute destination/,
    );
    await createFails(
      bundle({ ...proc({}), mounts: [{ destination: '/data', source: '/no/such/dir', type: 'bind' }] }),
      /bind mount source \/no\/such\/dir does not exist/,
    );
    // a second bind fails after the first was mounted: the first is undone
    await createFails(
      bundle({
        ...proc({}),
        mounts: [
          { destination: '/a', source: stage, type: 'bind' },
          { destination: '/b', source: '/no/such/dir', type: 'bind' },
        ],
      }),
      /does not exist/,
    );
    await createFails(bundle(proc({})), /stdout \/no\/such\/fifo does not exist/, Code.InvalidArgument, {
      stdout: '/no/such/fifo',
    });
    await createFails(bundle(proc({})), /terminals are not supported/, Code.InvalidArgument, { terminal: true });
    await createFails(bundle(proc({})), /binary:\/\/ log drivers are not supported/, Code.InvalidArgument, {
      stdout: 'binary:///usr/bin/logger',
    });
  });

  test('after all that the daemon serves on, with no child of a failed Create left', T, async () => {
    const info = await d.task.connect({ id: d.id });
    assert.equal(info.shimPid, d.pid);
    assert.equal(await runs(bundle(proc({ args: ['/probe.wasm', 'args', 'still', 'here'] })), 0), 'still\nhere\n');
    assert.deepEqual(wasmChildrenUnder(s.c.tmp), []);
    assert.deepEqual(listMounts(s.c.tmp), []);
    assert.ok(fdCount(d.pid) < 64, `daemon holds ${fdCount(d.pid)} fds`);
  });
});

// ---------------------------------------------------------------------------
// entrypoints and modules: ctr run

const run = (s: Suite, args: string[], id: string, extra: { timeoutMs?: number } = {}) =>
  s.run(args, { id, image, ...extra });

describe('entrypoints that are not a runnable module (ctr run)', () => {
  const cases: [label: string, entry: string, pattern: RegExp][] = [
    ['missing', '/nope.wasm', /module \/nope\.wasm not found in the container's rootfs/],
    ['directory', '/dir.wasm', /entrypoint \/dir\.wasm is a directory, not a WebAssembly module/],
    ['text', '/not-wasm.wasm', /\/not-wasm\.wasm is not a WebAssembly module: no \\0asm magic/],
    ['empty', '/empty.wasm', /\/empty\.wasm is not a WebAssembly module/],
    ['elf', '/probe.native', /it is an ELF executable; wasmts runs WASI preview1 modules/],
    ['truncated', '/truncated.wasm', /truncated\.wasm does not compile: WebAssembly\.compile\(\)/],
    [
      'import',
      '/missing-import.wasm',
      /missing-import\.wasm cannot be instantiated: .*wasi_snapshot_preview1.*no_such_call/,
    ],
    ['unstable', '/wasi-unstable.wasm', /wasi-unstable\.wasm cannot be instantiated: .*wasi_unstable/],
    ['envimport', '/env-import.wasm', /env-import\.wasm cannot be instantiated: .*"env"/],
    ['nostart', '/no-start.wasm', /no-start\.wasm has no exported function "_start"/],
    ['noexport', '/probe.wasm#nope', /probe\.wasm has no exported function "nope"/],
    ['nomemory', '/no-memory.wasm', /no-memory\.wasm does not export its memory/],
  ];
  test(
    'each fails ctr run with a clear error',
    { timeout: 120_000 },
    e2e(
      () => s,
      cases.map(([l]) => l),
      async (_t, s, ids) => {
        for (const [i, [label, entry, pattern]] of cases.entries()) {
          const r = await run(s, [entry], ids[i]);
          assert.notEqual(r.code, 0, `${label}: ctr run succeeded`);
          assert.match(r.stderr, pattern, `${label}: ${r.stderr}`);
          assert.match(r.stderr, /invalid argument/, `${label}: containerd should see InvalidArgument: ${r.stderr}`);
        }
        const tasks = await s.tasks();
        for (const id of ids) assert.equal(tasks.has(id), false, `${id} left a task`);
      },
    ),
  );
});

describe('modules that misbehave (ctr run)', () => {
  test(
    'a trap exits 134 with the trap on stderr',
    T,
    e2e(
      () => s,
      ['trap', 'tinytrap'],
      async (_t, s, [a, b]) => {
        const r = await run(s, ['/probe.wasm', 'trap'], a);
        assert.equal(r.code, 134, r.stderr);
        assert.match(r.stderr, /wasm trap: unreachable/);
        const t = await run(s, ['/tiny-trap.wasm'], b);
        assert.equal(t.code, 134, t.stderr);
        assert.match(t.stderr, /wasm trap: unreachable/);
        const ok = await run(s, ['/tiny-ok.wasm'], s.id('tinyok'));
        assert.equal(ok.code, 0, ok.stderr);
      },
    ),
  );

  test(
    'a module spinning forever burns CPU until killed: SIGKILL → 137, SIGTERM → 143',
    T,
    e2e(
      () => s,
      ['spin9', 'spin15'],
      async (_t, s, ids) => {
        for (const [id, sig, status] of [
          [ids[0], 'SIGKILL', 137],
          [ids[1], 'SIGTERM', 143],
        ] as const) {
          await s.runDetached(['/probe.wasm', 'spin'], { id, image, flags: ['--null-io'] });
          await s.waitStatus(id, 'RUNNING');
          const pid = (await s.tasks()).get(id)!.pid;
          const cpu = () => {
            const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
            return Number(f[11]) + Number(f[12]);
          };
          const c0 = cpu();
          await until('the spinning module to use CPU', () => cpu() > c0 + 10, 10_000);
          await s.ctrOk(['task', 'kill', '-s', sig, id]);
          await s.waitStatus(id, 'STOPPED');
          const d = await s.ctrOk(['task', 'delete', id]);
          assert.match(d.stderr, new RegExp(`exit code ${status}\\b`), d.stderr);
          await s.ctrOk(['container', 'delete', id]);
        }
      },
    ),
  );

  test(
    '100 MB on stdout arrives in full, in order',
    T,
    e2e(
      () => s,
      ['bigout'],
      async (t, s, [id]) => {
        const MB = 100;
        const p = s.c.ctrSpawn(
          ['run', '--rm', '--runtime', RUNTIME, '--platform', PLATFORM, image, id, '/probe.wasm', 'bigout', String(MB)],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        t.after(() => {
          if (p.exitCode === null) p.kill('SIGKILL');
        });
        let bytes = 0;
        let head = '';
        let tail = Buffer.alloc(0);
        let badLine = '';
        let carry = '';
        let line = 0;
        p.stdout!.on('data', (b: Buffer) => {
          bytes += b.length;
          if (head.length < 64) head += b.toString('latin1', 0, 64);
          tail = Buffer.concat([tail, b]).subarray(-128);
          // every 64-byte line is "%08d " + pattern, numbered in order
          if (badLine) return;
          const text = carry + b.toString('latin1');
          const whole = text.length - (text.length % 64);
          for (let o = 0; o < whole; o += 64) {
            const l = text.slice(o, o + 64);
            if (l.slice(0, 8) !== String(line).padStart(8, '0') || l[63] !== '\n') {
              badLine = `line ${line}: ${JSON.stringify(l)}`;
              break;
            }
            line++;
          }
          carry = text.slice(whole);
        });
        const err = collect(p.stderr);
        const code = await new Promise<number | null>((resolve) => p.on('close', (c) => resolve(c)));
        assert.equal(code, 0, err.text());
        assert.equal(badLine, '', 'output out of order or corrupted');
        assert.equal(bytes, MB * 1048576, `got ${bytes} bytes`);
        assert.equal(line, MB * 16384);
        assert.match(head, /^00000000 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01\n/);
        assert.match(tail.toString('latin1'), /01638399 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01\n$/);
      },
    ),
  );

  // The real thing (probe.wasm growing to the 4 GiB wasm32 limit) takes ~10 s and
  // runs in scripts/soak.ts. Here the module declares a 64 MiB maximum itself, so
  // memory.grow fails at 64 MiB: the same path (malloc returns NULL, the module
  // decides what to do, its own exit status comes back), in well under a second.
  test(
    "out of memory: malloc fails at the module's limit and its own exit status (3) comes back",
    T,
    e2e(
      () => s,
      ['oom'],
      async (_t, s, [id]) => {
        const r = await run(s, [`/${PROBE_64M}`, 'oom', '1'], id);
        assert.equal(r.code, 3, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
        const m = /^oom: allocated (\d+) MiB \((\d+) chunks\)\n$/.exec(r.stdout);
        assert.ok(m, `stdout: ${r.stdout}`);
        assert.ok(Number(m[1]) > 32 && Number(m[1]) < 64, r.stdout);
      },
    ),
  );

  // What the child does (src/child/main.ts: new WASI({ returnOnExit: true }),
  // wasi.start), without the shim: a module whose memory.grow failed then calls
  // proc_exit. In ~5-10 % of runs node segfaults in the unwind (core: SIGSEGV in
  // v8::internal::Factory::NewCatchContext <- Runtime_PushCatchContext, i.e.
  // entering the catch of node:wasi's start()); with returnOnExit:false 0 of 100
  // crash. Under the shim (its child) ~1 % of OOM runs end 139 instead of 3.
  test(
    "node:wasi survives proc_exit after a failed memory.grow (the child's returnOnExit path)",
    {
      ...T,
      todo: "BUG (Node 20.20.2 / V8 11.3, not the shim): SIGSEGV in Factory::NewCatchContext when proc_exit unwinds with returnOnExit:true after memory.grow failed; the OOM case then exits 139, not the module's status",
    },
    () => {
      const script = path.join(stage, 'oom-returnonexit.cjs');
      fs.writeFileSync(
        script,
        [
          "const { WASI } = require('node:wasi');",
          "const fs = require('node:fs');",
          "const w = new WASI({ version: 'preview1', args: ['p', 'oom', '16'], env: {}, preopens: {}, returnOnExit: true, stdout: fs.openSync('/dev/null', 'w') });",
          'WebAssembly.instantiate(fs.readFileSync(process.argv[2]), w.getImportObject()).then(({ instance }) => { process.exitCode = w.start(instance); });',
        ].join('\n'),
      );
      const module = path.join(stage, 'files', PROBE_64M);
      const codes: Record<string, number> = {};
      for (let i = 0; i < 30; i++) {
        const r = spawnSync(process.execPath, ['--no-warnings', script, module], { encoding: 'utf8', timeout: 20_000 });
        const k = r.signal ?? String(r.status);
        codes[k] = (codes[k] ?? 0) + 1;
      }
      assert.deepEqual(codes, { 3: 30 });
    },
  );
});

test('nothing is left behind: no shim, child, mount, socket or bundle', T, async () => {
  await sleep(100);
  const problems = await settledProblems(s.c, s.ids);
  assert.deepEqual(problems, [], JSON.stringify(census(s.c, s.ids), null, 1));
  assert.deepEqual(censusProblems(census(s.c, s.ids)), []);
  assert.deepEqual(await s.leftovers(), []);
});
