// A CRI pod through ctr with CRI's annotations: the sandbox ("pause")
// container, whose image is native, runs as the built-in Wasm pause module;
// the pod's Wasm containers share its daemon; all stop with the right status.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { e2e, leftoversLogged, useSuite, E2E_TEST_TIMEOUT as T } from '../harness/index.js';

const S = useSuite('pod');

const shimPid = (id: string) => S().shimPid(id);

test(
  'pause sandbox plus two Wasm containers in one pod daemon',
  T,
  e2e(S, ['sandbox', 'app1', 'app2'], async (_t, s, [sandbox, app1, app2]) => {
    const pod = [`--annotation`, `io.kubernetes.cri.sandbox-id=${sandbox}`];
    // The sandbox's entrypoint is a native ELF in this image: it must not matter.
    await s.runDetached(['/probe.native'], {
      id: sandbox,
      flags: [...pod, '--annotation', 'io.kubernetes.cri.container-type=sandbox'],
    });
    await s.waitStatus(sandbox, 'RUNNING');
    const apps = [app1, app2];
    for (const id of apps) {
      await s.runDetached(['/probe.wasm', 'daemon', '200'], {
        id,
        flags: [...pod, '--annotation', 'io.kubernetes.cri.container-type=container'],
      });
      await s.waitStatus(id, 'RUNNING');
    }
    const daemon = shimPid(sandbox);
    // Later containers of the pod were handed to the live daemon: same socket.
    const sock = fs.readFileSync(path.join(s.c.bundleDir(app1), 'address'), 'utf8');
    assert.equal(fs.readFileSync(path.join(s.c.bundleDir(sandbox), 'address'), 'utf8'), sock);
    assert.equal(fs.readFileSync(path.join(s.c.bundleDir(app2), 'address'), 'utf8'), sock);
    const ps = await s.ctrOk(['task', 'ps', sandbox]);
    assert.match(ps.stdout, /\d+/);
    for (const id of [...apps, sandbox]) {
      await s.ctrOk(['task', 'kill', '-s', 'SIGTERM', id]);
      await s.waitStatus(id, 'STOPPED');
      const d = await s.ctr(['task', 'delete', id]);
      assert.match(d.stdout + d.stderr, /exit code 143|^$/);
    }
    assert.ok(daemon > 0);
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
