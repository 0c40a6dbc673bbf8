// A short version of each soak phase (scripts/soak.ts runs the full ones):
// sequential lifecycles, a long-lived pod socket, containers at once, all on
// the containerd's one long-lived daemon. Each checks every container's
// output or exit status and that nothing leaked.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setupSuite, shimDaemons, type Suite } from '../harness/index.js';
import { formatResult, lifecycles, parallel, podDaemon, type Leak, type PhaseResult } from './soak-lib.js';

let s: Suite;

before(
  async () => {
    s = await setupSuite('hsoak');
    // one run first: the baselines then include the daemon (its events connection to containerd stays)
    const warm = await s.run(['/probe.wasm', 'exit', '0'], { id: s.id('warmup') });
    assert.equal(warm.code, 0, warm.stderr);
  },
  { timeout: 120_000 },
);

after(async () => {
  await s?.teardown();
});

function check(r: PhaseResult, ignore: (l: Leak) => boolean = () => false): void {
  process.stdout.write(`${formatResult(r).replace(/^/gm, '# ')}\n`);
  assert.deepEqual(r.failures, [], formatResult(r));
  assert.deepEqual(
    r.leaks.filter((l) => !ignore(l)),
    [],
    formatResult(r),
  );
}

const podFds = (l: Leak) => /^pod daemon holds \d+ fds/.test(l.what);
let pod: PhaseResult | undefined;
let daemon: number | undefined;

test(
  '30 sequential ctr run --rm lifecycles: all correct, one daemon served them all, nothing leaked',
  { timeout: 120_000 },
  async () => {
    const r = await lifecycles(s, 30, { sampleEvery: 10 });
    const daemons = shimDaemons(s.c.address).map((p) => p.pid);
    daemon = daemons[0];
    check(r);
    assert.equal(daemons.length, 1, `one long-lived daemon: ${daemons.join(', ')}`);
    assert.equal(String(r.figures['daemons serving them']), String(daemon));
  },
);

test(
  'a pod daemon serves 15 containers one after another: outputs right, RSS flat, nothing left',
  { timeout: 120_000 },
  async () => {
    pod = await podDaemon(s, 15, { warmup: 5 });
    check(pod, podFds);
  },
);

// Each container's stdin FIFO (opened by src/daemon/container/stdio.ts openStdin) stays
// open in the daemon after its process exited and was deleted: one fd per
// container, for the life of a pod's daemon.
test(
  "the pod daemon's fd count stays flat",
  {
    timeout: 10_000,
  },
  () => {
    assert.ok(pod, 'the pod test ran');
    assert.deepEqual(pod.leaks.filter(podFds), []);
  },
);

// More starts at once than the daemon keeps ready sockets: the rest go
// through Node, which hands them to the same daemon over its control socket.
test(
  '10 containers at once: each with its own output and exit status, on the one daemon, nothing left',
  { timeout: 120_000 },
  async () => {
    check(await parallel(s, 10));
    assert.deepEqual(
      shimDaemons(s.c.address).map((p) => p.pid),
      [daemon],
      'the burst left the one long-lived daemon, and only it',
    );
  },
);

test('nothing of this suite is left', { timeout: 30_000 }, async () => {
  assert.deepEqual(await s.leftovers(), []);
});
