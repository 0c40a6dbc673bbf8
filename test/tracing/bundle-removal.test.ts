// The shim driven the way containerd 1.6 drives it, without containerd: the
// front end's `start` (through Node: stdin is a pipe) hands the container to
// the key's long-lived daemon, a ttrpc client sends Create, Wait, Start,
// Delete, Shutdown, and then the bundle is removed, which is what containerd's
// shim.delete() does right after Shutdown returns (bundle.Delete). The
// container's spans must still reach the collector, whether the daemon lives
// on (its flush after the socket closes) or leaves because its containerd is
// gone (its exit flush): neither may depend on the bundle.
//
// Regression test (deterministic) for an intermittent loss seen end to end:
// all spans of a short container missing, its shim exiting at once although
// the endpoint never answered. The export worker is only spawned at shutdown
// for a container that lived < 250 ms, and a Worker thread started while the
// process's cwd no longer exists dies during its bootstrap with "ENOENT: no
// such file or directory, uv_cwd" (fixed in 6f7a9f8: runDaemon chdir('/')).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { ensureBuilt, isolatedOtelEnv, MODULES, processAlive, REPO, sleep } from '../harness/index.js';
import { waitForContainerTrace } from './helpers.js';

let rx: OtlpReceiver;
const tmps: string[] = [];

before(async () => {
  await ensureBuilt();
  rx = await startOtlpReceiver({ httpPort: 0, grpcPort: null });
});
after(async () => {
  await rx?.close();
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

const alive = processAlive;

interface Outcome {
  id: string;
  /** Daemon log lines (read from the bundle's log FIFO). */
  log: () => string;
  /** The daemon, alive or not. */
  pid: number;
  /** ms from Shutdown's reply until the daemon process was gone (containerdGone), else undefined. */
  exitMs?: number;
}

/**
 * One container's life on the key's daemon started by `start` for a fresh
 * bundle; removeBundle mimics containerd 1.6. containerdGone: no file at the
 * containerd address, so the daemon leaves once the socket closed (it watches
 * the address); otherwise it lives on, as with a running containerd.
 */
async function lifecycle(label: string, removeBundle: boolean, containerdGone: boolean): Promise<Outcome> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), `wasmts-tracing-bundle-${label}-`));
  tmps.push(dir);
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
  fs.copyFileSync(path.join(MODULES, 'hello.wasm'), path.join(bundle, 'rootfs', 'hello.wasm'));
  fs.writeFileSync(
    path.join(bundle, 'config.json'),
    JSON.stringify({
      ociVersion: '1.0.2',
      process: { args: ['/hello.wasm'], env: ['PATH=/'], cwd: '/' },
      root: { path: 'rootfs' },
    }),
  );
  // The daemon logs into <bundle>/log, a FIFO containerd reads; cat plays containerd.
  const fifo = path.join(bundle, 'log');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
  const logChunks: Buffer[] = [];
  reader.stdout.on('data', (b: Buffer) => logChunks.push(b));
  const log = () => Buffer.concat(logChunks).toString('utf8');

  const id = `trc-bundle-${label}-${process.pid}`;
  const containerdAddress = path.join(dir, 'containerd.sock');
  if (!containerdGone) fs.writeFileSync(containerdAddress, ''); // the daemon only checks that it exists
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...isolatedOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl }),
  };
  const start = spawnSync(
    path.join(REPO, 'bin', 'containerd-shim-wasmts-v1'),
    [
      '-namespace',
      'wasmts-tracing',
      '-id',
      id,
      '-address',
      containerdAddress,
      '-publish-binary',
      '/bin/true',
      '-debug',
      'start',
    ],
    { cwd: bundle, env, input: '', encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(start.status, 0, `start failed: ${start.stderr}`);
  const address = start.stdout.trim();
  const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
  daemons.push({ pid, containerdAddress });
  let client: TtrpcClient | undefined;
  try {
    client = await TtrpcClient.connect(address, { connectTimeoutMs: 5_000 });
    const task = createClient(Task, client);
    await task.create({ id, bundle, rootfs: [], stdin: '', stdout: '', stderr: '', terminal: false });
    const waited = task.wait({ id });
    await task.start({ id });
    const w = await waited;
    assert.equal(w.exitStatus, 0);
    await task.delete({ id });
    await task.shutdown({ id });
    const t0 = Date.now();
    // containerd 1.6, shim.delete(): Shutdown, Close, then bundle.Delete().
    client.close();
    client = undefined;
    if (removeBundle) fs.rmSync(bundle, { recursive: true, force: true });
    const socketPath = address.replace(/^unix:\/\//, '');
    while (fs.existsSync(socketPath) && Date.now() - t0 < 5_000) await sleep(20);
    assert.ok(!fs.existsSync(socketPath), `socket ${socketPath} still there 5 s after Shutdown`);
    if (!containerdGone) {
      assert.ok(alive(pid), `daemon ${pid} left although its containerd is there`);
      return { id, log, pid };
    }
    while (alive(pid) && Date.now() - t0 < 10_000) await sleep(20);
    assert.ok(!alive(pid), `daemon ${pid} still running 10 s after Shutdown, its containerd gone`);
    return { id, log, pid, exitMs: Date.now() - t0 };
  } finally {
    client?.close?.();
    reader.kill();
  }
}

/** The daemons started here; each leaves once its containerd address is gone (killed if not). */
const daemons: { pid: number; containerdAddress: string }[] = [];
after(async () => {
  for (const d of daemons) fs.rmSync(d.containerdAddress, { force: true });
  const t0 = Date.now();
  while (daemons.some((d) => alive(d.pid)) && Date.now() - t0 < 6_000) await sleep(50);
  for (const d of daemons) if (alive(d.pid)) process.kill(d.pid, 'SIGKILL');
});

const SPANS = ['wasmts.container', 'Create', 'Start', 'Wait', 'Delete', 'Shutdown', 'wasm.run'];

test("control: a short container's spans reach the collector when the bundle stays", { timeout: 30_000 }, async () => {
  const o = await lifecycle('kept', false, true);
  await waitForContainerTrace(rx, o.id, SPANS, 3_000).catch((err: Error) => {
    throw new Error(`${err.message}\n--- daemon log ---\n${o.log()}`);
  });
});

test(
  "a short container's spans reach the collector although containerd removes the bundle right after Shutdown, the daemon living on",
  {
    timeout: 30_000,
  },
  async () => {
    const o = await lifecycle('removed-lives', true, false);
    await waitForContainerTrace(rx, o.id, SPANS, 3_000).catch((err: Error) => {
      throw new Error(`${err.message}\n--- daemon log ---\n${o.log()}`);
    });
    assert.ok(alive(o.pid), 'the daemon serves on');
  },
);

test(
  "a short container's spans reach the collector although containerd removes the bundle right after Shutdown and then goes away (exit flush)",
  {
    timeout: 30_000,
  },
  async () => {
    const o = await lifecycle('removed', true, true);
    await waitForContainerTrace(rx, o.id, SPANS, 3_000).catch((err: Error) => {
      throw new Error(`${err.message}\ndaemon exited ${o.exitMs} ms after Shutdown\n--- daemon log ---\n${o.log()}`);
    });
  },
);
