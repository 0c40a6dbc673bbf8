// Resource limits through the container's cgroup: a memory limit holds (the
// kernel kills a module that goes past it, reported as OOM with 137), metrics
// come from the cgroup, and the cgroup is gone after delete.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { e2e, leftoversLogged, subscribeEvents, until, useSuite, E2E_TEST_TIMEOUT as T } from '../harness/index.js';

const S = useSuite('res');
const MEMCG = '/sys/fs/cgroup/memory';
const cgroupsUsable = fs.existsSync(MEMCG) || fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

function cgroupDir(id: string): string {
  return fs.existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? `/sys/fs/cgroup/${S().c.namespace}/${id}`
    : `${MEMCG}/${S().c.namespace}/${id}`;
}

test(
  'a module past its memory limit is OOM-killed: 137 and a /tasks/oom event',
  { ...T, skip: !cgroupsUsable && 'no cgroups here' },
  e2e(S, ['oom'], async (t, s, [id]) => {
    const out = await subscribeEvents(t, s);
    const r = await s.run(['/probe.wasm', 'oom', '4'], { id: id, flags: ['--memory-limit', String(160 << 20)] });
    assert.equal(r.code, 137, `${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /oom: allocated/, 'killed before malloc failed');
    await until(
      '/tasks/oom for the container',
      () =>
        out
          .text()
          .split('\n')
          .some((l) => l.includes('/tasks/oom') && l.includes(id)),
      10_000,
    );
    assert.equal(fs.existsSync(cgroupDir(id)), false, 'cgroup removed at delete');
  }),
);

test(
  'ctr task metrics reads the cgroup: usage and the limit',
  { ...T, skip: !cgroupsUsable && 'no cgroups here' },
  e2e(S, ['metrics'], async (_t, s, [id]) => {
    await s.runDetached(['/probe.wasm', 'daemon', '200'], { id: id, flags: ['--memory-limit', String(256 << 20)] });
    await s.waitStatus(id, 'RUNNING');
    const m = await s.ctrOk(['task', 'metrics', id]);
    assert.match(m.stdout, /memory\.limit_in_bytes\s+268435456/);
    assert.match(m.stdout, /memory\.usage_in_bytes\s+[1-9]\d*/);
    assert.match(m.stdout, /pids\.current\s+[1-9]/);
    assert.ok(fs.existsSync(cgroupDir(id)), 'cgroup at linux.cgroupsPath');
    await s.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
    await s.waitStatus(id, 'STOPPED');
    await s.ctr(['task', 'delete', id]);
    assert.equal(fs.existsSync(cgroupDir(id)), false, 'cgroup removed at delete');
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
