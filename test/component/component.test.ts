// WASI 0.2 components end to end under a private containerd, traced: the
// image is packed by `wasmts image` around probe.component.wasm (probe.c
// wrapped by jco's preview 1 command adapter, scripts/build-modules.sh).
// Covers what the component sees (args, env, stdio, files), exit statuses,
// traps, kills, the sandbox (planted symlinks, ".."), the transpile cache
// (miss, then hit, then a corrupted entry), the spans and TRACECONTEXT, and a
// component whose import wasmts cannot provide.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import {
  ensureBuilt,
  makePlantedRootfs,
  MODULES,
  openLine,
  PLANTED_ABSOLUTE_INSIDE,
  PLANTED_ESCAPES,
  PLANTED_INSIDE,
  PLANTED_LAST_LINKS,
  PLANTED_OPEN_ARGS,
  PLATFORM,
  REPO,
  RUNTIME,
  type Suite,
  type TestImage,
} from '../harness/index.js';
import { settledLeftovers, startTracedContainerd, waitForContainerTrace } from '../tracing/helpers.js';

const T = { timeout: 90_000 };
const GREETING = 'greetings from a component image';

let rx: OtlpReceiver;
let env: Suite;
let img: TestImage;
let cacheDir: string;
/** Host files no container may read or touch. */
let secretDir: string;
/** A rootfs with links planted in it (for ctr run --rootfs). */
let planted: string;

/** The image, packed by the wasmts CLI as a user would: the component is its entrypoint. */
function packWithCli(dir: string, ref: string): string {
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, 'greeting.txt'), `${GREETING}\n`);
  const scratch = path.join(dir, 'scratch');
  fs.mkdirSync(scratch);
  fs.chmodSync(scratch, 0o777);
  fs.writeFileSync(path.join(scratch, '.keep'), '');
  const tar = path.join(dir, 'image.tar');
  execFileSync(
    path.join(REPO, 'bin', 'wasmts'),
    [
      'image',
      '--ref',
      ref,
      '--out',
      tar,
      '--env',
      'PATH=/',
      '--env',
      'FROM_IMAGE=yes',
      '--file',
      `${data}:/data`,
      '--file',
      `${scratch}:/scratch`,
      '--file',
      `${path.join(MODULES, 'reactor.component.wasm')}:/reactor.component.wasm`,
      '--file',
      `${path.join(MODULES, 'probe.wasm')}:/probe.wasm`,
      '--file',
      `${path.join(MODULES, 'needs-missing.component.wasm')}:/needs-missing.component.wasm`,
      path.join(MODULES, 'probe.component.wasm'),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return tar;
}

before(
  async () => {
    await ensureBuilt();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-component-'));
    const ref = 'docker.io/wasmts-component/probe:v1';
    img = {
      ref,
      tar: packWithCli(dir, ref),
      dir,
      probe: { size: 0, sha256: '' },
      dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
    cacheDir = path.join(dir, 'component-cache');
    rx = await startOtlpReceiver({ httpPort: 0, grpcPort: null });
    env = await startTracedContainerd(
      'component',
      { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl, WASMTS_COMPONENT_CACHE: cacheDir },
      img,
    );
    secretDir = path.join(dir, 'host-secret');
    fs.mkdirSync(secretDir);
    fs.writeFileSync(path.join(secretDir, 'secret.txt'), 'host secret\n');
    planted = makePlantedRootfs(
      path.join(dir, 'planted-rootfs'),
      path.join(MODULES, 'probe.component.wasm'),
      secretDir,
    );
  },
  { timeout: 180_000 },
);

after(async () => {
  await env?.teardown();
  await rx?.close();
  img?.dispose();
});

const P = '/probe.component.wasm';

function compileSpan(id: string, spans: Awaited<ReturnType<typeof waitForContainerTrace>>['spans']) {
  const s = spans.find((x) => x.name === 'wasm.compile');
  assert.ok(s, `no wasm.compile span for ${id}`);
  return s;
}

describe('the transpile cache and the spans', () => {
  test(
    'first container transpiles (cache=miss), the second loads the cache (cache=hit); both traced, TRACECONTEXT set',
    T,
    async () => {
      const first = env.id('cold');
      const r1 = await env.run([P, 'trace'], { id: first });
      assert.equal(r1.code, 0, r1.stderr + env.logFor(first));
      const t1 = await waitForContainerTrace(
        rx,
        first,
        ['wasmts.container', 'Create', 'wasm.compile', 'wasm.instantiate', 'wasm.run'],
        10_000,
      );
      const c1 = compileSpan(first, t1.spans);
      assert.equal(c1.attributes['wasmts.component.cache'], 'miss');
      assert.equal(c1.attributes['wasmts.wasm.kind'], 'component');
      const digest = String(c1.attributes['wasm.module.sha256']);
      assert.match(digest, /^[0-9a-f]{64}$/);
      assert.ok(
        fs.existsSync(path.join(cacheDir, digest, 'manifest.json')),
        'the cache entry is named by the component digest',
      );
      // TRACECONTEXT is the traceparent of the Create span the child hangs under
      const create = t1.spans.find((s) => s.name.endsWith('/Create'))!;
      assert.equal(r1.stdout.trim(), `00-${create.traceId}-${create.spanId}-01`);
      const run = t1.spans.find((s) => s.name === 'wasm.run')!;
      assert.equal(run.attributes['process.exit.code'], 0);

      const second = env.id('warm');
      const r2 = await env.run([P, 'trace'], { id: second });
      assert.equal(r2.code, 0, r2.stderr);
      const t2 = await waitForContainerTrace(rx, second, ['wasm.compile', 'wasm.run'], 10_000);
      assert.equal(compileSpan(second, t2.spans).attributes['wasmts.component.cache'], 'hit');
    },
  );

  test('a corrupted cache entry is rebuilt (cache=miss) and the container still runs', T, async () => {
    const entries = fs.readdirSync(cacheDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.ok(entries.length >= 1);
    for (const e of entries) fs.writeFileSync(path.join(cacheDir, e, 'component.mjs'), 'throw new Error("tampered")');
    const id = env.id('corrupt');
    const r = await env.run([P, 'args', 'still', 'fine'], { id });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'still\nfine\n');
    const t = await waitForContainerTrace(rx, id, ['wasm.compile'], 10_000);
    assert.equal(compileSpan(id, t.spans).attributes['wasmts.component.cache'], 'miss');
  });

  test('the cache removed, then two containers of the component at once: both run, one transpiles', T, async () => {
    fs.rmSync(cacheDir, { recursive: true, force: true });
    const ids = [env.id('removed'), env.id('removed')];
    const runs = await Promise.all(ids.map((id, i) => env.run([P, 'args', `again ${i}`], { id })));
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `again ${i}\n`);
    });
    const caches: unknown[] = [];
    for (const id of ids)
      caches.push(
        compileSpan(id, (await waitForContainerTrace(rx, id, ['wasm.compile'], 10_000)).spans).attributes[
          'wasmts.component.cache'
        ],
      );
    assert.deepEqual(caches.sort(), ['hit', 'miss']);
  });
});

describe('what the component sees', () => {
  test('args, argv[0], env from the image and ctr run --env', T, async () => {
    const r = await env.run([P, 'args', 'one', 'two words', '', 'ünï'], { id: env.id('args') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'one\ntwo words\n\nünï\n');
    const a0 = await env.run([P, 'argv0'], { id: env.id('argv0') });
    assert.equal(a0.stdout, `${P}\n`);
    const e = await env.c.ctr(
      [
        'run',
        '--rm',
        '--runtime',
        RUNTIME,
        '--platform',
        PLATFORM,
        '--env',
        'FOO=bar baz',
        img.ref,
        env.id('env'),
        P,
        'env',
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(e.code, 0, e.stderr);
    const lines = e.stdout.split('\n');
    for (const want of ['FOO=bar baz', 'FROM_IMAGE=yes', 'PATH=/', 'PWD=/'])
      assert.ok(lines.includes(want), `${want} missing: ${e.stdout}`);
    assert.ok(
      lines.some((l) => l.startsWith('TRACECONTEXT=')),
      e.stdout,
    );
    assert.ok(
      !lines.some((l) => l.startsWith('WASMTS_COMPONENT_CACHE=') || l.startsWith('OTEL_')),
      `containerd's env leaked: ${e.stdout}`,
    );
  });

  test('stdout, stderr and stdin', T, async () => {
    const o = await env.run([P, 'cat', '/data/greeting.txt'], { id: env.id('cat') });
    assert.equal(o.code, 0, o.stderr);
    assert.equal(o.stdout, `${GREETING}\n`);
    assert.equal(o.stderr, '');
    const e = await env.run([P, 'stderr', 'only on stderr'], { id: env.id('stderr') });
    assert.equal(e.code, 0);
    assert.equal(e.stdout, '');
    assert.equal(e.stderr, 'only on stderr\n');
    // ctr 1.6 does not close the task's stdin at EOF: one line is what the component can read
    const i = await env.run([P, 'stdin', 'read: '], {
      id: env.id('stdin'),
      input: 'a line from the host\nsecond line\n',
    });
    assert.equal(i.code, 0, i.stderr);
    assert.equal(i.stdout, 'read: a line from the host\n');
  });

  test('the component writes into its rootfs; 5 MB of stdout arrive intact', T, async () => {
    const w = await env.run([P, 'write', '/data/out.txt', 'written by a component'], { id: env.id('write') });
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, 'written by a component\n');
    const big = await env.run([P, 'bigout', '5'], { id: env.id('bigout'), timeoutMs: 60_000 });
    assert.equal(big.code, 0, big.stderr);
    assert.equal(Buffer.byteLength(big.stdout), 5 * 1048576);
    const lines = big.stdout.split('\n');
    assert.equal(lines[16383], `00016383 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01`);
  });
});

const untilStatus = (id: string, status: string) => env.waitStatus(id, status);

describe('exit statuses', () => {
  test('exit 0 is 0; any other exit is 1 (wasi:cli/exit@0.2 carries ok or err only)', T, async () => {
    const [z, three] = await Promise.all([
      env.run([P, 'exit', '0'], { id: env.id('exit0') }),
      env.run([P, 'exit', '3'], { id: env.id('exit3') }),
    ]);
    assert.equal(z.code, 0, z.stderr);
    assert.equal(three.code, 1, three.stderr);
  });

  test('a trap exits 134 with "wasm trap" on stderr, and the wasm.run span says so', T, async () => {
    const id = env.id('trap');
    const r = await env.run([P, 'trap'], { id });
    assert.equal(r.code, 134);
    assert.match(r.stderr, /^wasm trap: .*unreachable/m);
    assert.doesNotMatch(r.stderr, /wasm trap: wasm trap/);
    const t = await waitForContainerTrace(rx, id, ['wasm.run'], 10_000);
    assert.equal(t.spans.find((s) => s.name === 'wasm.run')!.attributes['process.exit.code'], 134);
  });

  for (const [sig, status] of [
    ['SIGTERM', 143],
    ['SIGKILL', 137],
  ] as const) {
    test(`ctr task kill -s ${sig} on a running component: exit ${status}`, T, async (t) => {
      const id = env.id(sig.toLowerCase());
      t.after(() => env.cleanup(id));
      const r = await env.run([P, 'daemon', '100'], { id, detach: true });
      assert.equal(r.code, 0, r.stderr);
      await untilStatus(id, 'RUNNING');
      await env.c.ctrOk(['task', 'kill', '-s', sig, id]);
      await untilStatus(id, 'STOPPED');
      const d = await env.c.ctrOk(['task', 'delete', id]);
      assert.match(d.stderr, new RegExp(`exit code ${status}\\b`), d.stderr);
    });
  }
});

/** ctr run --rm --rootfs <planted>: the planted rootfs is a host directory, not an image. */
const runIn = (id: string, args: string[]) => env.run(args, { id, rootfs: planted });

describe('the sandbox', () => {
  test(
    'ctr task exec --user into a component container: the exec runs as that user, reads the image, owns what it writes, root-only files stay closed',
    T,
    async (t) => {
      const NOBODY = 65534;
      const id = env.id('user');
      t.after(() => env.cleanup(id));
      await env.c.ctrOk([
        'run',
        '-d',
        '--null-io',
        '--runtime',
        RUNTIME,
        '--platform',
        PLATFORM,
        img.ref,
        id,
        P,
        'daemon',
        '500',
      ]);
      await untilStatus(id, 'RUNNING');
      const exec = (execId: string, args: string[]) =>
        env.c.ctr(['task', 'exec', '--exec-id', execId, '--user', `${NOBODY}:${NOBODY}`, id, P, ...args], {
          timeoutMs: 60_000,
        });
      const read = await exec('read', ['cat', '/data/greeting.txt']);
      assert.equal(read.code, 0, `reading its own image as uid ${NOBODY}: ${read.stderr}`);
      assert.equal(read.stdout, `${GREETING}\n`);
      const write = await exec('write', ['write', '/scratch/mine.txt', 'mine']);
      assert.equal(write.code, 0, write.stderr);
      const st = fs.statSync(path.join(env.c.bundleDir(id), 'rootfs', 'scratch', 'mine.txt'));
      assert.deepEqual([st.uid, st.gid], [NOBODY, NOBODY]);
      const deny = await exec('deny', ['write', '/data/greeting.txt', 'overwritten']);
      assert.notEqual(deny.code, 0);
      assert.match(deny.stderr, /Permission denied|Operation not permitted/);
    },
  );

  test('symlinks planted in the rootfs (absolute, relative, in any component) never lead out', T, async () => {
    const r = await runIn(env.id('links'), PLANTED_OPEN_ARGS);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /host secret/);
    assert.doesNotMatch(r.stdout, /root:x:0:0/);
    const line = (p: string) => openLine(r.stdout, p);
    for (const p of [...PLANTED_ESCAPES, ...PLANTED_LAST_LINKS])
      assert.match(line(p), /: fail /, `${p} must not open: ${line(p)}`);
    for (const p of PLANTED_INSIDE) assert.match(line(p), /: ok inside$/, `${p} must open: ${line(p)}`);
    // preview2-shim refuses every absolute link, even one meant inside the image: safe, if stricter than runc
    assert.match(line(PLANTED_ABSOLUTE_INSIDE), /: (ok inside|fail .+)$/);
  });

  test('writes through planted links or ".." never land outside', T, async () => {
    const before = fs.readdirSync(secretDir).sort();
    const w1 = await runIn(env.id('wabs'), ['/probe.wasm', 'write', '/abs/planted.txt', 'x']);
    const w2 = await runIn(env.id('wdots'), [
      '/probe.wasm',
      'write',
      `../../../../../../../../..${secretDir}/planted2.txt`,
      'x',
    ]);
    const w3 = await runIn(env.id('wrel'), ['/probe.wasm', 'write', '/d/rel/planted3.txt', 'x']);
    assert.deepEqual(
      fs.readdirSync(secretDir).sort(),
      before,
      `host dir changed: ${[w1, w2, w3].map((r) => r.stdout + r.stderr).join(' | ')}`,
    );
    assert.notEqual(w1.code, 0, 'writing through /abs must fail');
    assert.notEqual(w3.code, 0, 'writing through /d/rel must fail');
    if (w2.code === 0) assert.ok(fs.existsSync(path.join(planted, secretDir, 'planted2.txt')));
    const ok = await runIn(env.id('wok'), ['/probe.wasm', 'write', '/d/ok/written.txt', 'inside']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fs.readFileSync(path.join(planted, 'd', 'sub', 'written.txt'), 'utf8'), 'inside');
  });

  test('".." and absolute paths stay in an image rootfs too', T, async () => {
    const r = await env.run([P, 'escape', `../../../../../..${secretDir}/secret.txt`, `${secretDir}/secret.txt`], {
      id: env.id('escape'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /host secret|root:x:0:0/);
  });
});

describe('components wasmts cannot run', () => {
  test('an import no host provides fails Create, naming the interface', T, async () => {
    const id = env.id('missing');
    const r = await env.run(['/needs-missing.component.wasm'], { id });
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /needs-missing\.component\.wasm cannot be instantiated: it imports wasmts:test\/missing, which wasmts cannot provide/,
    );
    assert.match(env.logFor(id), /wasmts:test\/missing/);
  });

  test('a component that is no wasi:cli command fails Create, saying so', T, async () => {
    const r = await env.run(['/reactor.component.wasm'], { id: env.id('reactor') });
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /reactor\.component\.wasm is a component but not a wasi:cli command: it does not export wasi:cli\/run/,
    );
  });

  test('#export on a component is refused: a component runs wasi:cli/run', T, async () => {
    const r = await env.run([`${P}#main`, 'args', 'x'], { id: env.id('hash') });
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /is a component: it runs its wasi:cli\/run export, "#main" only selects exports of core modules/,
    );
  });

  test('a module that is neither a core module nor a component is refused at Create', T, async () => {
    // version 2, layer 0: no such core module
    const bad = path.join(planted, 'future.wasm');
    fs.writeFileSync(bad, Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]));
    const r = await runIn(env.id('future'), ['/future.wasm']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /future\.wasm/);
  });
});

test('nothing is left behind', T, async () => {
  assert.deepEqual(await settledLeftovers([env], 8_000), []);
});
