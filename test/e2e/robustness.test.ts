// End to end under a private containerd: many containers at once, a
// containerd restart under containers running on the shared daemon, a child
// killed from outside. (kill -9 of the daemon itself: daemon.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  collect,
  e2e,
  leftoversLogged,
  PLATFORM,
  processAlive,
  RUNTIME,
  shimDaemons,
  sleep,
  subscribeEvents,
  until,
  useSuite,
} from '../harness/index.js';

const S = useSuite('robust');
const T = { timeout: 90_000 };

const N = 10;

// Each module blocks on stdin until every container runs, then prints what it
// read. Why hold them: ctr itself can drop the output of a module that exits
// within ~100 ms of opening its stdout FIFO when ctr is starved of CPU (10
// node processes starting at once on a small machine). ctr's cio opens each
// FIFO in a goroutine, and task.Delete's io.Cancel() closes any FIFO whose
// goroutine has not yet recorded the open, even if open(2) already returned
// in the kernel (traced: the reader's openat returned 85 ms after the child
// opened the FIFO and 20 ms after it exited; ctr printed nothing, exit 0).
// runc hides it behind a slower create/start path. Holding the modules keeps
// this test about the shim; exit statuses travel through Wait and are tested
// without holding.
test(
  `${N} containers at once, each with its own output and exit status`,
  T,
  e2e(
    S,
    Array.from({ length: N }, (_, i) => `par${i}`),
    async (t, s, ids) => {
      const runs = ids.map((id, i) =>
        s.spawnRun(['/probe.wasm', 'stdin', `container ${i} read: `], {
          id,
          flags: ['--env', `INDEX=${i}`],
          timeoutMs: 60_000,
        }),
      );
      t.after(() => runs.forEach((r) => r.kill()));
      await until(
        `all ${N} tasks to run`,
        async () => {
          const tasks = await s.tasks();
          return ids.every((id) => tasks.get(id)?.status === 'RUNNING');
        },
        45_000,
        250,
      );
      await sleep(200);
      runs.forEach((r, i) => r.write(`${ids[i]}\n`));
      const results = await Promise.all(runs.map((r) => r.result));
      results.forEach((r, i) => {
        assert.equal(r.code, 0, `container ${i}: ${r.stderr}`);
        assert.equal(r.stdout, `container ${i} read: ${ids[i]}\n`);
        assert.equal(r.stderr, '');
      });
      // exit statuses travel through Wait, not the FIFOs: no need to hold these
      const codes = await Promise.all(
        ids.map((_, i) => s.run(['/probe.wasm', 'exit', String(10 + i)], { id: s.id(`parx${i}`) })),
      );
      codes.forEach((r, i) => assert.equal(r.code, 10 + i, `container ${i}: ${r.stderr}`));
    },
  ),
);

test(
  `${N} detached containers run side by side and are all listed`,
  T,
  e2e(
    S,
    Array.from({ length: N }, (_, i) => `det${i}`),
    async (_t, s, ids) => {
      await Promise.all(ids.map((id) => s.runDetached(['/probe.wasm', 'daemon', '200'], { id })));
      const tasks = await s.tasks();
      for (const id of ids) assert.equal(tasks.get(id)?.status, 'RUNNING', `${id} not running`);
      const pids = new Set(ids.map((id) => tasks.get(id)!.pid));
      assert.equal(pids.size, N, 'every container has its own child');
      await Promise.all(ids.map((id, i) => s.ctrOk(['task', 'kill', '-s', i % 2 ? 'SIGKILL' : 'SIGTERM', id])));
      for (const id of ids) await s.waitStatus(id, 'STOPPED');
      const dels = await Promise.all(ids.map((id) => s.ctrOk(['task', 'delete', id])));
      dels.forEach((d, i) =>
        assert.match(d.stderr, new RegExp(`exit code ${i % 2 ? 137 : 143}\\b`), `${ids[i]}: ${d.stderr}`),
      );
      await s.ctrOk(['container', 'delete', ...ids]);
    },
  ),
);

test(
  'a containerd restart while 3 containers run on the shared daemon: none lost, kill/delete work, exit statuses arrive',
  T,
  e2e(S, ['restart-a', 'restart-b', 'restart-c'], async (t, s, ids) => {
    for (const id of ids) await s.runDetached(['/probe.wasm', 'daemon', '100'], { id });
    const was = await s.tasks();
    for (const id of ids) assert.equal(was.get(id)?.status, 'RUNNING', id);
    const daemons = new Set(ids.map((id) => s.shimPid(id)));
    assert.equal(daemons.size, 1, `one daemon serves all three: ${[...daemons].join(', ')}`);
    const [daemon] = [...daemons] as [number];
    const oldPid = s.c.pid;

    await s.c.restart();
    assert.notEqual(s.c.pid, oldPid, 'containerd should have a new pid');

    const now = await s.tasks();
    for (const id of ids) {
      assert.deepEqual(now.get(id), was.get(id), `${id} must still be listed, same pid, still RUNNING`);
      // containerd reconnected to the daemon's socket of each: State, Pids and Stats go through it
      const ps = await s.ctrOk(['task', 'ps', id]);
      assert.match(ps.stdout, new RegExp(`^${was.get(id)!.pid}\\s`, 'm'));
      await s.ctrOk(['task', 'metrics', id]);
    }
    assert.ok(processAlive(daemon), 'the daemon lived through the restart');

    const out = await subscribeEvents(t, s);

    // a new container after the restart works, on the same daemon (no other was started)
    const fresh = s.id('restart-new');
    const r = await s.run(['/probe.wasm', 'exit', '9'], { id: fresh });
    assert.equal(r.code, 9, r.stderr);
    assert.deepEqual(
      shimDaemons(s.c.address).map((p) => p.pid),
      [daemon],
    );

    const signals = ['SIGTERM', 'SIGKILL', 'SIGTERM'] as const;
    const want = [143, 137, 143];
    await Promise.all(ids.map((id, i) => s.ctrOk(['task', 'kill', '-s', signals[i], id])));
    for (const id of ids) await s.waitStatus(id, 'STOPPED');
    // the daemon's events reach the new containerd
    await until(
      '/tasks/exit of all three after the restart',
      () =>
        ids.every((id, i) =>
          out
            .text()
            .split('\n')
            .some(
              (l) =>
                l.includes('/tasks/exit') &&
                l.includes(`"container_id":"${id}"`) &&
                l.includes(`"exit_status":${want[i]}`),
            ),
        ),
      10_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nctr events:\n${out.text()}`);
    });
    for (const [i, id] of ids.entries()) {
      const d = await s.ctrOk(['task', 'delete', id]);
      assert.match(d.stderr, new RegExp(`exit code ${want[i]}\\b`), `${id}: ${d.stderr}`);
    }
    await s.ctrOk(['container', 'delete', ...ids]);
  }),
);

test(
  'a Wasm child killed from outside is reported with its status',
  T,
  e2e(S, ['outside'], async (t, s, [id]) => {
    const run = s.c.ctrSpawn(
      ['run', '--rm', '--runtime', RUNTIME, '--platform', PLATFORM, s.image, id, '/probe.wasm', 'daemon', '100'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => {
      run.kill('SIGKILL');
    });
    const out = collect(run.stdout);
    const exited = new Promise<number | null>((resolve) => run.on('close', (code) => resolve(code)));
    const pid = await until(
      'the task to run',
      async () => {
        const t = (await s.tasks()).get(id);
        return t?.status === 'RUNNING' && t.pid;
      },
      15_000,
    );
    await until('the first tick', () => out.text().includes('tick 0'), 10_000);
    process.kill(pid, 'SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => {
        timer = setTimeout(() => r('timeout'), 20_000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(code, 137, `ctr run should exit 137 when its child is SIGKILLed (got ${code})`);
    assert.match(out.text(), /^tick 0\n/);
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
