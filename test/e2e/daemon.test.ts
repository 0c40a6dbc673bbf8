// End to end under a private containerd: the one long-lived daemon that
// serves every container of a key dies with `kill -9` while 5 containers
// run. containerd must see each of them exit with a non-zero status (its
// dead-shim cleanup runs the front end's `delete`, which falls back to Node's
// cleanup), nothing of them may be left, and the next container must work on
// a new daemon. (A containerd restart with several containers on the shared
// daemon is in robustness.test.ts.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { e2e, leftoversLogged, processAlive, shimDaemons, subscribeEvents, until, useSuite } from '../harness/index.js';

const S = useSuite('edmn');
const T = { timeout: 120_000 };
const N = 5;

interface ExitEvent {
  id: string;
  status: number;
}

/** /tasks/exit events in `ctr events` output (one JSON event per line after the topic). */
function exitEvents(text: string): ExitEvent[] {
  const out: ExitEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('/tasks/exit')) continue;
    const json = line.slice(line.indexOf('{'));
    try {
      const e = JSON.parse(json) as { container_id?: string; exit_status?: number };
      if (e.container_id) out.push({ id: e.container_id, status: e.exit_status ?? 0 });
    } catch {
      // not an event line
    }
  }
  return out;
}

test(
  `kill -9 of the daemon with ${N} containers running: containerd sees all ${N} exit non-zero, nothing is left, the next ctr run works`,
  T,
  e2e(
    S,
    Array.from({ length: N }, (_, i) => `k${i}`),
    async (t, s, ids) => {
      const events = await subscribeEvents(t, s);

      for (const id of ids) await s.runDetached(['/probe.wasm', 'daemon', '100'], { id });
      const tasks = await s.tasks();
      for (const id of ids) assert.equal(tasks.get(id)?.status, 'RUNNING', `${id} not running`);
      const children = ids.map((id) => tasks.get(id)!.pid);
      const daemons = new Set(ids.map((id) => s.shimPid(id)));
      assert.equal(daemons.size, 1, `all ${N} containers on one daemon: ${[...daemons].join(', ')}`);
      const [daemon] = [...daemons] as [number];
      assert.deepEqual(
        shimDaemons(s.c.address).map((p) => p.pid),
        [daemon],
      );
      // the daemon's own events reach containerd in the right namespace, for containers that reached it without Node too
      await until(
        `/tasks/start of all ${N} from the daemon`,
        () =>
          ids.every((id) =>
            events
              .text()
              .split('\n')
              .some((l) => l.includes('/tasks/start') && l.includes(`"container_id":"${id}"`)),
          ),
        10_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nctr events:\n${events.text()}`);
      });
      const sockets = ids.map((id) => s.socketFor(id));
      for (const p of sockets) assert.ok(fs.statSync(p).isSocket());

      process.kill(daemon, 'SIGKILL');
      await until(
        `all ${N} exits to reach containerd`,
        () => ids.every((id) => exitEvents(events.text()).some((e) => e.id === id)),
        30_000,
        100,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nctr events:\n${events.text()}`);
      });
      for (const id of ids) {
        const statuses = exitEvents(events.text())
          .filter((e) => e.id === id)
          .map((e) => e.status);
        assert.ok(
          statuses.length >= 1 && statuses.every((st) => st !== 0),
          `${id}: exit statuses ${statuses.join(', ')}, want non-zero`,
        );
      }
      events.stop(); // (leftovers() would count it: it runs with -address)
      // containerd forgot the dead shim's tasks (or lists them stopped; then delete reports non-zero)
      await until(
        "containerd to drop the dead daemon's tasks",
        async () => {
          const now = await s.tasks();
          return ids.every((id) => !now.has(id) || now.get(id)!.status === 'STOPPED');
        },
        15_000,
      );
      const now = await s.tasks();
      for (const id of ids) {
        if (!now.has(id)) continue;
        const d = await s.ctr(['task', 'delete', id]);
        assert.match(d.stderr + d.stdout, /exit code [1-9]\d*\b/, `${id}: ${d.stderr}`);
      }
      for (const id of ids) await s.ctrOk(['container', 'delete', id]);

      // nothing of them is left: children, sockets, bundles (leftovers() checks processes, mounts, sockets)
      await until('the Wasm children to be gone', () => children.every((pid) => !processAlive(pid)), 10_000);
      for (const p of sockets) assert.equal(fs.existsSync(p), false, `socket left: ${p}`);
      for (const id of ids) assert.equal(fs.existsSync(s.c.bundleDir(id)), false, `bundle left: ${s.c.bundleDir(id)}`);
      assert.deepEqual(
        shimDaemons(s.c.address).map((p) => p.pid),
        [],
        'no daemon runs',
      );
      assert.deepEqual(await s.leftovers(), []);

      // the next container works, on a new daemon
      const next = s.id('after');
      const r = await s.run(['/probe.wasm', 'args', 'after the kill'], { id: next });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'after the kill\n');
      const running = shimDaemons(s.c.address).map((p) => p.pid);
      assert.equal(running.length, 1, `one new daemon: ${running.join(', ')}`);
      assert.notEqual(running[0], daemon);
      const exitCode = await s.run(['/probe.wasm', 'exit', '42'], { id: s.id('after-exit') });
      assert.equal(exitCode.code, 42, exitCode.stderr);
    },
  ),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
