// The sh front end and the key's long-lived daemon, driven the way containerd
// drives them (argv, cwd = bundle, stdin /dev/null unless options are passed)
// under a private containerd, with our own ttrpc client on the sockets:
// the fast path (a ready socket claimed without Node), one daemon serving many
// sockets, the Node fallback handing containers to the running daemon, the
// front end's `delete`, what the daemon key is made of, when the daemon
// leaves, and what a dead daemon's files do to the next `start`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema, anyPack } from '@bufbuild/protobuf/wkt';
import {
  type Containerd,
  daemonKey,
  ensureBuilt,
  MODULES,
  processAlive,
  REPO,
  SHIM_BIN,
  shimDaemons,
  sleep,
  startContainerd,
  until,
  E2E_TEST_TIMEOUT as T,
} from '../harness/index.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import { Task, DeleteResponseSchema } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { OptionsSchema } from '../../src/gen/runtimeoptions/v1/api_pb.js';
import { daemonPaths, STATE_ROOT } from '../../src/handoff/handoff.js';

const NS = 'default';
const READY_SOCKETS = 4; // src/daemon/daemon.ts keeps this many

let ctd: Containerd;
let tmp: string;
/** The front end through a symlink, as containerd finds it on its PATH (exercises its readlink). */
let shim: string;
/** A PATH holding only symlinks to the coreutils the front end runs: a Node fallback cannot start. */
let coreutilsOnly: string;

before(
  async () => {
    await ensureBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-daemon-'));
    shim = path.join(tmp, 'bin', 'containerd-shim-wasmts-v1');
    fs.mkdirSync(path.dirname(shim));
    fs.symlinkSync(SHIM_BIN, shim);
    coreutilsOnly = path.join(tmp, 'coreutils');
    fs.mkdirSync(coreutilsOnly);
    for (const tool of ['cat', 'sha256sum', 'mv', 'readlink']) {
      const where = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      assert.ok(where.startsWith('/'), `no ${tool} on PATH`);
      fs.symlinkSync(fs.realpathSync(where), path.join(coreutilsOnly, tool));
    }
    ctd = await startContainerd({ name: 'shim-daemon' });
  },
  { timeout: 60_000 },
);

after(async () => {
  await ctd?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

/** A bundle where containerd 1.6 puts it, with probe.wasm in its rootfs and `args` as the process. */
function bundleFor(c: Containerd, id: string, args: string[] = ['/probe.wasm', 'exit', '0']): string {
  const dir = c.bundleDir(id, NS);
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  fs.copyFileSync(path.join(MODULES, 'probe.wasm'), path.join(dir, 'rootfs', 'probe.wasm'));
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ ociVersion: '1.0.2', process: { args, env: ['PATH=/'], cwd: '/' }, root: { path: 'rootfs' } }),
  );
  return dir;
}

interface ShimRun {
  code: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

/**
 * The front end as containerd runs it: `stdin` 'null' is what containerd
 * gives `start` without runtime options (the fast path), bytes go on a pipe.
 */
function frontEnd(
  c: Containerd,
  args: string[],
  o: { cwd: string; stdin?: 'null' | Uint8Array; env?: Record<string, string>; PATH?: string },
): ShimRun {
  const r = spawnSync(
    shim,
    ['-namespace', NS, '-address', c.address, '-publish-binary', '/usr/bin/containerd', ...args],
    {
      cwd: o.cwd,
      ...(o.stdin === undefined || o.stdin === 'null'
        ? { stdio: ['ignore', 'pipe', 'pipe'] as const }
        : { input: o.stdin }),
      env: { ...process.env, TTRPC_ADDRESS: c.ttrpcAddress, ...o.env, ...(o.PATH ? { PATH: o.PATH } : {}) },
      timeout: 20_000,
    },
  );
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
}

function start(
  c: Containerd,
  id: string,
  o: Omit<Parameters<typeof frontEnd>[2], 'cwd'> & { bundle?: string } = {},
): ShimRun & { bundle: string } {
  const bundle = o.bundle ?? bundleFor(c, id);
  const r = frontEnd(c, ['-id', id, 'start'], { ...o, cwd: bundle });
  assert.equal(r.code, 0, `start ${id}: ${r.stderr}`);
  assert.equal(r.stderr, '', `start ${id} printed on stderr`);
  assert.equal(r.stdout, expectedAddress(c, id));
  assert.equal(fs.readFileSync(path.join(bundle, 'address'), 'utf8'), r.stdout);
  return { ...r, bundle };
}

function expectedAddress(c: Containerd, grouping: string): string {
  return `unix:///run/containerd/s/${createHash('sha256')
    .update(path.join(c.address, NS, grouping))
    .digest('hex')}`;
}

const socketOf = (address: string) => address.slice('unix://'.length);

/** The pid `start` recorded: only Node's start writes shim.pid (the fast path never runs Node). */
function startPid(bundle: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** The state dir of the daemon holding a key's lock: /run/wasmts/<key32> whose lock names pid. */
function stateDirOf(pid: number): string | undefined {
  for (const d of fs.readdirSync(STATE_ROOT)) {
    try {
      if (fs.readFileSync(path.join(STATE_ROOT, d, 'lock'), 'utf8').trim() === String(pid))
        return path.join(STATE_ROOT, d);
    } catch {
      // no lock here
    }
  }
  return undefined;
}

/** What a daemon that left kept in its state dir, besides its log (the dir may be gone altogether). */
const leftIn = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n !== 'daemon.log') : []);

const readySockets = (dir: string, pid?: number) =>
  fs
    .readdirSync(dir)
    .filter((n) => n.startsWith(pid ? `ready-${pid}-` : 'ready-') && fs.statSync(path.join(dir, n)).isSocket());

async function withTask<T>(
  address: string,
  fn: (task: ReturnType<typeof createClient<typeof Task>>) => Promise<T>,
): Promise<T> {
  const conn = await TtrpcClient.connect(address, { connectTimeoutMs: 5_000 });
  try {
    return await fn(createClient(Task, conn));
  } finally {
    conn.close();
  }
}

/** What containerd sends with every call: the daemon learns a claimed socket's namespace from it. */
const md = { metadata: { 'containerd-namespace-ttrpc': NS } };

const connectPid = (address: string, id: string) =>
  withTask(address, async (t) => (await t.connect({ id }, md)).shimPid);

async function shutdown(address: string, id: string): Promise<void> {
  await withTask(address, (t) => t.shutdown({ id }, md));
}

async function waitGone(file: string, ms = 3_000): Promise<void> {
  await until(`${file} to be removed`, () => !fs.existsSync(file), ms, 20);
}

async function waitExit(pid: number, ms: number): Promise<void> {
  await until(`daemon ${pid} to exit`, () => !processAlive(pid), ms, 50);
}

/** The key's daemon (started through Node if there is none yet) and its state dir with all ready sockets bound. */
async function keyDaemon(
  c: Containerd,
  seedId: string,
  env: Record<string, string> = {},
): Promise<{ pid: number; dir: string; address: string }> {
  const seed = start(c, seedId, { stdin: new Uint8Array(), env });
  const pid = startPid(seed.bundle)!;
  assert.ok(pid && processAlive(pid), `no daemon behind ${seedId}`);
  const dir = await until(`daemon ${pid}'s lock`, () => stateDirOf(pid), 10_000);
  await until(
    `daemon ${pid}'s ${READY_SOCKETS} ready sockets`,
    () => readySockets(dir, pid).length === READY_SOCKETS,
    10_000,
  );
  return { pid, dir, address: seed.stdout };
}

// ---------------------------------------------------------------------------

let daemon: { pid: number; dir: string; address: string };

test(
  'start with stdin /dev/null claims a ready socket of the running daemon, without Node, whatever PATH says',
  T,
  async () => {
    daemon = await keyDaemon(ctd, 'dmn-seed');
    assert.equal(fs.statSync(daemon.dir).mode & 0o077, 0, "the key's state dir is owner-only");

    // The control: with this PATH, anything that needs Node fails.
    const needsNode = frontEnd(ctd, ['-id', 'dmn-control', 'start'], {
      cwd: bundleFor(ctd, 'dmn-control'),
      stdin: Buffer.from('x'),
      PATH: coreutilsOnly,
    });
    assert.notEqual(needsNode.code, 0, 'the Node fallback must not be able to run with the coreutils-only PATH');
    assert.equal(fs.existsSync(path.join(ctd.bundleDir('dmn-control', NS), 'address')), false);

    const before = readySockets(daemon.dir, daemon.pid);
    const fast = start(ctd, 'dmn-fast', { stdin: 'null', PATH: coreutilsOnly });
    assert.equal(startPid(fast.bundle), undefined, 'no shim.pid: start did not go through Node');
    const socketPath = socketOf(fast.stdout);
    const st = fs.statSync(socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600, 'the claimed socket is owner-only');
    // the daemon's listener moved: one ready socket less, then the daemon binds a new one
    const claimed = before.filter((n) => !fs.existsSync(path.join(daemon.dir, n)));
    assert.equal(claimed.length, 1, `exactly one ready socket claimed (before: ${before.join(', ')})`);
    await until(
      'the daemon to refill its ready sockets',
      () => readySockets(daemon.dir, daemon.pid).length === READY_SOCKETS,
      5_000,
    );
    // and the socket under its new name is served by that daemon
    assert.equal(await connectPid(fast.stdout, 'dmn-fast'), daemon.pid, "Connect answers the daemon's pid");
    assert.equal(await connectPid(daemon.address, 'dmn-seed'), daemon.pid);
    assert.deepEqual(
      shimDaemons(ctd.address).map((p) => p.pid),
      [daemon.pid],
      'one daemon for the key',
    );
    // a changed PATH did not change the key (the daemon was started with the test's PATH)
    await shutdown(fast.stdout, 'dmn-fast');
    await shutdown(daemon.address, 'dmn-seed');
    await waitGone(socketOf(daemon.address));
    assert.ok(processAlive(daemon.pid), "the daemon lives on after its sockets' Shutdown");
  },
);

test(
  "one daemon serves two claimed sockets at once; a container's lifecycle and Shutdown on one leave the other answering",
  T,
  async () => {
    assert.ok(daemon, 'the first test ran');
    const a = start(ctd, 'dmn-two-a', {
      stdin: 'null',
      bundle: bundleFor(ctd, 'dmn-two-a', ['/probe.wasm', 'exit', '7']),
    });
    const b = start(ctd, 'dmn-two-b', { stdin: 'null' });
    assert.equal(startPid(a.bundle), undefined);
    assert.equal(startPid(b.bundle), undefined);
    assert.equal(await connectPid(a.stdout, 'dmn-two-a'), daemon.pid);
    assert.equal(await connectPid(b.stdout, 'dmn-two-b'), daemon.pid);

    // a whole container on a, while b stays connected
    const connB = await TtrpcClient.connect(b.stdout, { connectTimeoutMs: 5_000 });
    let exit: { w: { exitStatus: number }; pid: number };
    try {
      const taskB = createClient(Task, connB);
      exit = await withTask(a.stdout, async (t) => {
        const created = await t.create(
          { id: 'dmn-two-a', bundle: a.bundle, rootfs: [], stdin: '', stdout: '', stderr: '', terminal: false },
          md,
        );
        assert.ok(created.pid > 0);
        const waited = t.wait({ id: 'dmn-two-a' }, md);
        await t.start({ id: 'dmn-two-a' }, md);
        const w = await waited;
        const d = await t.delete({ id: 'dmn-two-a' }, md);
        assert.equal(d.exitStatus, 7);
        assert.equal(d.pid, created.pid);
        await t.shutdown({ id: 'dmn-two-a' }, md);
        return { w, d, pid: created.pid };
      });
      assert.equal(exit.w.exitStatus, 7);
      await waitGone(socketOf(a.stdout));
      assert.equal(
        Number(fs.readFileSync(path.join(a.bundle, 'shim.pid'), 'utf8')),
        daemon.pid,
        'Create records the daemon in shim.pid',
      );
      // b: the same connection and a new one still answer, from the same daemon
      assert.equal((await taskB.connect({ id: 'dmn-two-b' }, md)).shimPid, daemon.pid);
      await assert.rejects(taskB.state({ id: 'dmn-two-a' }, md), /not found/, "a's container is not b's");
      assert.equal(await connectPid(b.stdout, 'dmn-two-b'), daemon.pid);
      await taskB.shutdown({ id: 'dmn-two-b' }, md);
    } finally {
      connB.close();
    }
    assert.ok(processAlive(daemon.pid));

    // The front end's `delete` prints the DeleteResponse the daemon left, byte for byte, without Node.
    const left = fs.readFileSync(path.join(a.bundle, 'wasmts-delete-response'));
    const fast = frontEnd(ctd, ['-id', 'dmn-two-a', '-bundle', a.bundle, 'delete'], {
      cwd: a.bundle,
      PATH: coreutilsOnly,
    });
    assert.equal(fast.code, 0, fast.stderr);
    assert.equal(fast.stderr, '');
    assert.deepEqual(fast.raw, left);
    const resp = fromBinary(DeleteResponseSchema, fast.raw);
    assert.equal(resp.exitStatus, 7);
    assert.equal(resp.pid, exit.pid);
    assert.ok(resp.exitedAt && resp.exitedAt.seconds > 0n);
    // Without it (the daemon never deleted: a crash), `delete` needs Node: it fails with the coreutils-only PATH ...
    const noResponse = frontEnd(ctd, ['-id', 'dmn-two-b', '-bundle', b.bundle, 'delete'], {
      cwd: b.bundle,
      PATH: coreutilsOnly,
    });
    assert.notEqual(noResponse.code, 0, 'delete without a DeleteResponse must reach Node');
    // ... and Node's cleanup answers 137, twice (idempotent), removing the address file.
    for (let i = 0; i < 2; i++) {
      const d = frontEnd(ctd, ['-id', 'dmn-two-b', '-bundle', b.bundle, 'delete'], { cwd: b.bundle });
      assert.equal(d.code, 0, d.stderr);
      assert.equal(fromBinary(DeleteResponseSchema, d.raw).exitStatus, 137);
      assert.equal(fs.existsSync(path.join(b.bundle, 'address')), false);
    }
    // b's socket: closed by Shutdown (the daemon never learnt its path without a Create), removed by delete at the latest
    assert.equal(fs.existsSync(socketOf(b.stdout)), false, "b's socket file is gone after Shutdown and delete");
  },
);

test('options on stdin go through Node, which hands the container to the running daemon', T, async () => {
  assert.ok(daemon, 'the first test ran');
  const options = toBinary(
    AnySchema,
    anyPack(OptionsSchema, create(OptionsSchema, { typeUrl: 'x', configPath: '/etc/x.toml' })),
  );
  const r = start(ctd, 'dmn-opts', { stdin: options });
  assert.equal(startPid(r.bundle), daemon.pid, "Node's start recorded the running daemon (handed over, none spawned)");
  assert.equal(await connectPid(r.stdout, 'dmn-opts'), daemon.pid);
  assert.deepEqual(
    shimDaemons(ctd.address).map((p) => p.pid),
    [daemon.pid],
  );
  await shutdown(r.stdout, 'dmn-opts');
  await waitGone(socketOf(r.stdout)); // a handed-over socket's path is known: Shutdown removes it
});

test(
  'a different OTEL_* or WASMTS_* environment gets its own daemon, a different PATH does not; an idle daemon leaves after WASMTS_IDLE_SECONDS',
  T,
  async () => {
    assert.ok(daemon, 'the first test ran');
    // PATH differs (and so does an unrelated variable): the same daemon, on the fast path and through Node
    const pathOnly = start(ctd, 'dmn-path', {
      stdin: new Uint8Array(),
      env: { PATH: `${process.env.PATH}:/opt/nri/bin`, UNRELATED: 'x' },
    });
    assert.equal(startPid(pathOnly.bundle), daemon.pid);
    await shutdown(pathOnly.stdout, 'dmn-path');

    const otel = await keyDaemon(ctd, 'dmn-otel', { OTEL_SDK_DISABLED: 'true', WASMTS_IDLE_SECONDS: '3' });
    const wasmts = await keyDaemon(ctd, 'dmn-wasmts', { WASMTS_IDLE_SECONDS: '2' });
    const pids = new Set([daemon.pid, otel.pid, wasmts.pid]);
    assert.equal(pids.size, 3, `three keys, three daemons: ${[...pids].join(', ')}`);
    assert.equal(new Set([daemon.dir, otel.dir, wasmts.dir]).size, 3, 'each key has its own state dir');
    assert.deepEqual(
      shimDaemons(ctd.address)
        .map((p) => p.pid)
        .sort(),
      [...pids].sort(),
    );
    // a fast-path start with the OTEL variable claims that key's socket
    const viaOtel = start(ctd, 'dmn-otel-2', {
      stdin: 'null',
      env: { OTEL_SDK_DISABLED: 'true', WASMTS_IDLE_SECONDS: '3' },
      PATH: coreutilsOnly,
    });
    assert.equal(await connectPid(viaOtel.stdout, 'dmn-otel-2'), otel.pid);

    // Idle: a daemon serving a socket stays past its idle time; with none it leaves, and takes its files along.
    await sleep(4_500);
    assert.ok(processAlive(wasmts.pid), 'a daemon serving a socket does not leave when idle');
    assert.ok(processAlive(otel.pid));
    const t0 = Date.now();
    await shutdown(wasmts.address, 'dmn-wasmts');
    await waitExit(wasmts.pid, 8_000);
    const after = Date.now() - t0;
    assert.ok(after >= 1_500, `left ${after} ms after its last socket closed, before WASMTS_IDLE_SECONDS=2`);
    assert.deepEqual(leftIn(wasmts.dir), [], 'lock, control and ready sockets removed');
    assert.ok(processAlive(otel.pid), "another key's daemon is not affected");
    await shutdown(otel.address, 'dmn-otel');
    await shutdown(viaOtel.stdout, 'dmn-otel-2');
    await waitExit(otel.pid, 9_000);
    assert.ok(processAlive(daemon.pid), "the default key's daemon (idle 600 s) stays");
  },
);

test('a daemon leaves when its containerd stops', T, async () => {
  const other = await startContainerd({ name: 'shim-daemon-gone' });
  try {
    const d = await keyDaemon(other, 'dmn-gone');
    await shutdown(d.address, 'dmn-gone');
    process.kill(other.pid, 'SIGTERM');
    await until('containerd to stop', () => !processAlive(other.pid), 10_000);
    await waitExit(d.pid, 8_000);
    assert.deepEqual(leftIn(d.dir), [], 'lock, control and ready sockets removed');
  } finally {
    await other.stop();
  }
});

test("a dead daemon's lock and ready sockets make start fall back to Node; a new daemon takes over", T, async () => {
  assert.ok(daemon, 'the first test ran');
  const { pid, dir } = daemon;
  const readyBefore = readySockets(dir, pid);
  process.kill(pid, 'SIGKILL');
  // Reaped, not just dead: the front end's liveness check is /proc/<pid> (a zombie still has one).
  await until(`daemon ${pid} to be reaped`, () => !fs.existsSync(`/proc/${pid}`), 5_000, 20);
  assert.equal(
    fs.readFileSync(path.join(dir, 'lock'), 'utf8').trim(),
    String(pid),
    "the dead daemon's lock is still there",
  );
  assert.equal(readyBefore.length, READY_SOCKETS);
  assert.ok(
    readyBefore.every((n) => fs.existsSync(path.join(dir, n))),
    'its ready socket files are still there',
  );

  // the fast path must not claim a dead daemon's socket: without Node, start fails
  const noNode = frontEnd(ctd, ['-id', 'dmn-after-0', 'start'], {
    cwd: bundleFor(ctd, 'dmn-after-0'),
    PATH: coreutilsOnly,
  });
  assert.notEqual(noNode.code, 0, "start claimed a dead daemon's ready socket");
  assert.ok(
    readyBefore.every((n) => fs.existsSync(path.join(dir, n))),
    'no dead ready socket was renamed',
  );

  const first = start(ctd, 'dmn-after-1', { stdin: 'null' });
  const next = startPid(first.bundle);
  assert.ok(next && next !== pid && processAlive(next), `Node started a new daemon (shim.pid ${next})`);
  assert.equal(await connectPid(first.stdout, 'dmn-after-1'), next);
  await until(
    'the new daemon to take the lock',
    () => fs.readFileSync(path.join(dir, 'lock'), 'utf8').trim() === String(next),
    5_000,
  );
  await until(
    "the new daemon's ready sockets, the dead one's gone",
    () => readySockets(dir, next).length === READY_SOCKETS && readySockets(dir, pid).length === 0,
    10_000,
  );
  // and the fast path works again, on the new daemon
  const second = start(ctd, 'dmn-after-2', { stdin: 'null', PATH: coreutilsOnly });
  assert.equal(startPid(second.bundle), undefined);
  assert.equal(await connectPid(second.stdout, 'dmn-after-2'), next);
  await shutdown(first.stdout, 'dmn-after-1');
  await shutdown(second.stdout, 'dmn-after-2');
  await waitGone(socketOf(first.stdout));
  assert.deepEqual(
    shimDaemons(ctd.address).map((p) => p.pid),
    [next],
  );
});

// A dead daemon keeps its /proc entry until its parent reaps it: init reaps
// within a second here, a parent that never waits (or a slow init) leaves a
// zombie for good. Here the daemon runs under `sh -c '… & exec sleep'` (sleep
// never reaps), then is killed.
test('a dead daemon not yet reaped (a zombie): start does not claim its dead ready sockets', T, async (t) => {
  const [current] = shimDaemons(ctd.address);
  assert.ok(current, "the key's daemon from the tests above");
  const key = daemonKey(current.pid)!;
  assert.ok(key);
  process.kill(current.pid, 'SIGKILL');
  await until(`daemon ${current.pid} to be reaped`, () => !fs.existsSync(`/proc/${current.pid}`), 5_000, 20);

  // a daemon of the same key whose parent never reaps it
  const seed = 'dmn-zombie-seed';
  const bundle = bundleFor(ctd, seed);
  const socketPath = socketOf(expectedAddress(ctd, seed));
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const argv = [
    path.join(REPO, 'dist', 'shim.cjs'),
    '-namespace',
    NS,
    '-id',
    seed,
    '-address',
    ctd.address,
    '-publish-binary',
    '/usr/bin/containerd',
    '-bundle',
    bundle,
    '-socket',
    socketPath,
    'serve',
  ];
  const holder = spawn('sh', ['-c', `"${process.execPath}" "$@" & exec sleep 300`, 'sh', ...argv], {
    cwd: bundle,
    env: { ...process.env, _WASMTS_KEY: key, TTRPC_ADDRESS: ctd.ttrpcAddress },
    stdio: ['ignore', 'ignore', 'ignore', fd],
    detached: true,
  });
  // (closing it here would unlink the socket file the daemon now serves)
  t.after(() => {
    holder.kill('SIGKILL');
    server.close();
  });
  const dir = daemonPaths(key).dir;
  const zombie = await until(
    'the new daemon to take the lock',
    () => {
      const pid = Number(fs.readFileSync(path.join(dir, 'lock'), 'utf8'));
      return pid && pid !== current.pid && processAlive(pid) && pid;
    },
    10_000,
  );
  await until('its ready sockets', () => readySockets(dir, zombie).length === READY_SOCKETS, 10_000);
  process.kill(zombie, 'SIGKILL');
  await until(
    `daemon ${zombie} to be a zombie`,
    () => /^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')),
    5_000,
    20,
  );

  const noNode = frontEnd(ctd, ['-id', 'dmn-zombie-1', 'start'], {
    cwd: bundleFor(ctd, 'dmn-zombie-1'),
    PATH: coreutilsOnly,
  });
  assert.notEqual(noNode.code, 0, `start claimed a dead daemon's ready socket: ${noNode.stdout}`);
  const r = start(ctd, 'dmn-zombie-2', { stdin: 'null' });
  assert.ok(await connectPid(r.stdout, 'dmn-zombie-2'));
});
