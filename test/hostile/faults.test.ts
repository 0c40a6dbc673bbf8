// Faults from outside: the Wasm child SIGKILLed, the shim daemon SIGKILLed,
// containerd stopped and restarted while containers run and exit, and an
// OTLP endpoint that answers slowly. (A dead port, garbage and an endpoint
// that never answers are covered by test/tracing/resilience.test.ts and
// test/telemetry/resilience.test.ts.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import {
  e2e,
  listMounts,
  processAlive,
  settledProblems,
  setupSuite,
  sleep,
  subscribeEvents,
  until,
  useSuite,
} from '../harness/index.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../src/otlp/receiver.js';
import { canConnect } from '../../src/handoff/socket-address.js';

const T = { timeout: 90_000 };

const S = useSuite('hfault');

/** `ctr events` in the background, subscribed before it returns. */
async function events(
  t: import('node:test').TestContext,
): Promise<{ text(): string; lines(topic: string, id: string): string[] }> {
  const out = await subscribeEvents(t, S());
  return {
    text: () => out.text(),
    lines: (topic, id) =>
      out
        .text()
        .split('\n')
        .filter((l) => l.includes(topic) && l.includes(`"container_id":"${id}"`)),
  };
}

/** Processes holding a unix socket bound to `socketPath` (pid and command line), for messages. */
function socketHolders(socketPath: string): string[] {
  const inodes = new Set<string>();
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[7] === socketPath) inodes.add(f[6]);
  }
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]))
          out.push(
            `${pid} (fd ${fd}) ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 200)}`,
          );
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function runningPid(id: string): Promise<number> {
  return until(
    `${id} to run`,
    async () => {
      const t = (await S().tasks()).get(id);
      return t?.status === 'RUNNING' && t.pid;
    },
    15_000,
  );
}

test(
  'the Wasm child SIGKILLed from outside: STOPPED with 137, the daemon serves on and lets go of the container',
  T,
  e2e(S, ['childkill'], async (t, s, [id]) => {
    const ev = await events(t);
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: id, flags: ['--null-io'] });
    const pid = await runningPid(id);
    const daemon = s.shimPid(id);
    process.kill(pid, 'SIGKILL');
    await s.waitStatus(id, 'STOPPED');
    assert.ok(processAlive(daemon), 'the daemon must outlive its child');
    await until(
      '/tasks/exit with 137',
      () => ev.lines('/tasks/exit', id).some((l) => l.includes('"exit_status":137')),
      10_000,
    );
    const d = await s.ctrOk(['task', 'delete', id]);
    assert.match(d.stderr, /exit code 137\b/);
    await s.ctrOk(['container', 'delete', id]);
    // the long-lived daemon stays, holding nothing of the container (settledProblems checks its fds and children)
    assert.ok(processAlive(daemon), 'the shared daemon must outlive the container');
    assert.deepEqual(await settledProblems(s.c, [id]), []);
  }),
);

test(
  'the daemon SIGKILLed: containerd runs `delete`, the container is reported stopped (137), no child, mount or socket is left',
  T,
  e2e(S, ['shimkill'], async (t, s, [id]) => {
    const ev = await events(t);
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: id, flags: ['--null-io'] });
    const child = await runningPid(id);
    const daemon = s.shimPid(id);
    const socket = s.socketFor(id);
    const rootfs = `${s.c.bundleDir(id)}/rootfs`;
    assert.ok(fs.existsSync(socket));
    assert.ok(listMounts(rootfs).length > 0 || s.c.snapshotter !== 'overlayfs', 'the rootfs is mounted');
    const logOffset = s.c.log().length;
    process.kill(daemon, 'SIGKILL');
    // containerd notices the connection drop and cleans up through `delete`
    await until('/tasks/exit after the shim died', () => ev.lines('/tasks/exit', id).length > 0, 20_000);
    const exit = ev.lines('/tasks/exit', id)[0];
    assert.match(exit, /"exit_status":137/, exit);
    await until('/tasks/delete after the shim died', () => ev.lines('/tasks/delete', id).length > 0, 10_000);
    assert.match(s.c.log().slice(logOffset), /cleaning up after shim disconnected/);
    // the task is gone from containerd; the container object is left for its owner
    assert.equal((await s.tasks()).has(id), false);
    await until('the orphaned child to be killed by `delete`', () => !processAlive(child), 10_000);
    assert.equal(fs.existsSync(socket), false, 'socket left');
    assert.deepEqual(listMounts(rootfs), [], 'rootfs still mounted');
    await s.ctrOk(['container', 'delete', id]);
    assert.deepEqual(await settledProblems(s.c, [id]), []);
  }),
);

test(
  'containerd stopped while containers run and exit: RPCs still work, events and exit statuses arrive once it is back',
  { timeout: 120_000 },
  e2e(S, ['stays', 'dies', 'sleeps'], async (t, s, [stays, dies, sleeps]) => {
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: stays, flags: ['--null-io'] });
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: dies, flags: ['--null-io'] });
    await s.runDetached(['/probe.wasm', 'sleep', '3'], { id: sleeps, flags: ['--null-io'] });
    const before = await s.tasks();
    const diesPid = before.get(dies)!.pid;
    const daemons = [stays, dies, sleeps].map((id) => s.shimPid(id));

    // containerd goes away, and with it the events service the shims publish to
    const oldPid = s.c.pid;
    process.kill(oldPid, 'SIGTERM');
    let logOffset = 0;
    try {
      // Gone, not just a zombie leader: Go's other threads hold its sockets until the last one exits.
      await until('containerd to exit', () => !fs.existsSync(`/proc/${oldPid}`), 15_000);
      if (await canConnect(s.c.ttrpcAddress, 500))
        assert.fail(
          `something serves the events socket without containerd: ${socketHolders(s.c.ttrpcAddress).join('; ') || '(no process holds it)'}`,
        );
      const downAt = Date.now();

      // meanwhile one container is killed and one finishes by itself
      process.kill(diesPid, 'SIGTERM');
      // the daemons still answer RPCs at once (publishing the exit event cannot hold them up)
      for (const [id, status, exitStatus] of [
        [stays, Status.RUNNING, 0],
        [dies, Status.STOPPED, 143],
      ] as const) {
        const conn = await TtrpcClient.connect(s.socketFor(id));
        try {
          const task = createClient(Task, conn);
          const st = await until(
            `${id} state`,
            async () => {
              const r = await task.state({ id }, { timeoutMs: 2_000 });
              return r.status === status && r;
            },
            5_000,
          );
          assert.equal(st.exitStatus, exitStatus);
          const t0 = Date.now();
          await task.connect({ id }, { timeoutMs: 2_000 });
          assert.ok(Date.now() - t0 < 500, 'Connect answered promptly');
        } finally {
          conn.close();
        }
      }
      await sleep(Math.max(0, 5_000 - (Date.now() - downAt))); // the sleeper exits, the shims retry their events for a while
      for (const d of daemons) assert.ok(processAlive(d), `daemon ${d} died while containerd was away`);
    } finally {
      logOffset = s.c.log().length;
      await s.c.restart();
    }
    // the containers are still managed: listed with their pids and states
    const now = await s.tasks();
    assert.deepEqual(now.get(stays), before.get(stays));
    assert.equal(now.get(dies)?.status, 'STOPPED');
    assert.equal(now.get(sleeps)?.status, 'STOPPED');
    // the exit events queued while the socket was gone were delivered once it was back
    const forwarded = () =>
      s.c
        .log()
        .slice(logOffset)
        .split('\n')
        .filter((l) => l.includes('event forwarded') && l.includes('topic=/tasks/exit'));
    await until('both queued /tasks/exit events to be forwarded', () => forwarded().length >= 2, 15_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${s.logFor(dies, sleeps)}`);
      },
    );
    assert.doesNotMatch(s.c.log(), /dropped event/);
    // and the exit statuses are right
    const dd = await s.ctrOk(['task', 'delete', dies]);
    assert.match(dd.stderr, /exit code 143\b/);
    const ds = await s.ctrOk(['task', 'delete', sleeps]);
    assert.doesNotMatch(ds.stderr, /exit code/, 'ctr warns only about a non-zero status'); // 0
    // a container that exits after the restart: its event reaches the new containerd
    const ev = await events(t);
    await s.ctrOk(['task', 'kill', '-s', 'SIGKILL', stays]);
    await s.waitStatus(stays, 'STOPPED');
    await until(
      '/tasks/exit of the survivor',
      () => ev.lines('/tasks/exit', stays).some((l) => l.includes('"exit_status":137')),
      10_000,
    );
    const dk = await s.ctrOk(['task', 'delete', stays]);
    assert.match(dk.stderr, /exit code 137\b/);
    await s.ctrOk(['container', 'delete', stays, dies, sleeps]);
    assert.deepEqual(await settledProblems(s.c, [stays, dies, sleeps]), []);
  }),
);

test(
  'an OTLP endpoint that answers slowly: containers run as usual, the spans still arrive, the shim exits within its flush bound',
  { timeout: 90_000 },
  async () => {
    const DELAY_MS = 1_200;
    const rx: OtlpReceiver = await startOtlpReceiver({ httpPort: 0, grpcPort: null });
    const target = new URL(rx.httpUrl);
    let delayed = 0;
    // an HTTP proxy that holds every request DELAY_MS before passing it on
    const slow = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (b: Buffer) => chunks.push(b));
      req.on('end', () => {
        setTimeout(() => {
          delayed++;
          const up = http.request(
            { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
            (r) => {
              res.writeHead(r.statusCode ?? 502, r.headers);
              r.pipe(res);
            },
          );
          up.on('error', () => res.destroy());
          up.end(Buffer.concat(chunks));
        }, DELAY_MS);
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const port = (slow.address() as AddressInfo).port;
    const h = await setupSuite('hslow', {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '100' },
      imageOptions: { files: () => [], env: ['PATH=/'] },
    });
    try {
      const id = h.id('run');
      const t0 = Date.now();
      const r = await h.run(['/probe.wasm', 'exit', '42'], { id });
      const ms = Date.now() - t0;
      assert.equal(r.code, 42, r.stderr);
      assert.ok(ms < 5_000, `ctr run --rm took ${ms} ms`);
      // the spans of that container arrive, DELAY_MS late
      await rx.waitFor(
        (spans) => spans.some((sp) => sp.attributes['container.id'] === id && sp.name === 'wasmts.container'),
        15_000,
      );
      assert.ok(delayed > 0);
      assert.deepEqual(await settledProblems(h.c, [id], 10_000), []);
      assert.doesNotMatch(h.c.log(), /uncaught exception|unhandled rejection/i);
    } finally {
      await h.teardown();
      await new Promise<void>((r) => slow.close(() => r()));
      slow.closeAllConnections();
      await rx.close();
    }
  },
);

test('nothing of this suite is left', T, async () => {
  assert.deepEqual(await S().leftovers(), []);
});
