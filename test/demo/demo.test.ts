// scripts/demo.ts (`make demo`) end to end, non-interactively: --skip-setup (no
// apt, npm or make install: assumes scripts/ensure-deps.sh and `make build`
// ran; the shim comes from bin/), --no-keep, ephemeral ports. Checks the
// module's output, the waterfall, the viewer's address, and that nothing is
// left behind — after a normal run and after a Ctrl-C in the middle.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { descendants, listMounts, processAlive, processesUnder, REPO, sleep } from '../harness/index.js';

const DEMO = path.join(REPO, 'scripts', 'demo.ts');
const BASE_FLAGS = ['--skip-setup', '--no-keep', '--http-port', '0', '--grpc-port', '0'];
const notRoot = process.getuid?.() !== 0 ? 'needs root (runs a private containerd)' : false;

interface Demo {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output matches re. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, ['--import', 'tsx', DEMO, ...args], {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer): void => {
    out += b.toString('utf8');
    for (const w of [...waiters]) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(re);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${re} in the demo's output within ${timeoutMs} ms:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then(() => {
          if (!waiters.has(check)) return;
          check();
          if (waiters.has(check)) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`the demo exited without printing ${re}:\n${out}`));
          }
        });
        check();
      });
    },
  };
}

/** The demo's temp dir and containerd pid, from its progress lines. */
function parseRun(out: string): { dir: string; containerdPid: number } {
  const dir = /^\s+dir (\S+)$/m.exec(out)?.[1];
  const pid = /· pid (\d+) ·/.exec(out)?.[1];
  assert.ok(dir && pid, `temp dir and containerd pid not found in:\n${out}`);
  return { dir, containerdPid: Number(pid) };
}

async function assertNothingLeft(dir: string, pids: number[], out: string): Promise<void> {
  // Exit hooks run synchronously before the process ends; give the kernel a moment to reap.
  for (let i = 0; i < 40 && pids.some(processAlive); i++) await sleep(50);
  assert.deepEqual(pids.filter(processAlive), [], `processes of the demo still alive\n${out}`);
  assert.deepEqual(
    processesUnder(dir).map((p) => p.cmdline),
    [],
    'processes still referring to the temp dir',
  );
  assert.deepEqual(listMounts(dir), [], 'mounts left under the temp dir');
  assert.equal(fs.existsSync(dir), false, `temp dir ${dir} left behind`);
}

describe('make demo (scripts/demo.ts)', { timeout: 55_000 }, () => {
  it('rejects a bad flag with usage', async () => {
    const d = startDemo(['--http-port', 'nope']);
    const { code } = await d.exited;
    assert.equal(code, 2, d.output());
    assert.match(d.output(), /--http-port wants a port number/);
    assert.match(d.output(), /Usage:/);
  });

  it(
    'runs the demo module in a private containerd, prints its trace and the viewer address, and cleans up',
    { skip: notRoot, timeout: 40_000 },
    async () => {
      const d = startDemo(BASE_FLAGS);
      const { code } = await d.exited;
      const out = d.output();
      assert.equal(code, 0, `demo exited ${code}:\n${out}`);
      // the module's output, shown under the run step
      assert.match(
        out,
        /Running it: ctr run --rm --runtime io\.containerd\.wasmts\.v1 docker\.io\/library\/wasmts-demo:latest \S+ \/demo\.wasm echo "hello from a Wasm container"/,
      );
      assert.match(out, /│ hello from a Wasm container$/m);
      // the waterfall: the container's root span, the RPCs, the child's run span, process column
      const waterfall = out.slice(out.indexOf('\ntrace '));
      assert.match(waterfall, /^trace [0-9a-f]{32} · \d+ spans/m);
      assert.match(waterfall, /^wasmts\.container +shim /m);
      assert.match(waterfall, /^ {2}containerd\.task\.v[23]\.Task\/Create/m);
      assert.match(waterfall, /^ {4}wasm\.run +wasm child /m);
      // where to open it
      const page = /Open it as a web page: (http:\/\/127\.0\.0\.1:(\d+)\/)/.exec(out);
      assert.ok(page, `no web page address in:\n${out}`);
      assert.notEqual(page[2], '0');
      assert.match(out, /#trace=[0-9a-f]{32}/);
      // and gone afterwards
      assert.match(out, /cleaned up: containerd stopped/);
      const { dir, containerdPid } = parseRun(out);
      await assertNothingLeft(dir, [containerdPid], out);
    },
  );

  it('cleans up when interrupted (SIGINT) while the container runs', { skip: notRoot, timeout: 40_000 }, async () => {
    const d = startDemo([...BASE_FLAGS, '--', 'daemon']);
    try {
      await d.waitFor(/tick 2/, 30_000);
      const out = d.output();
      const { dir, containerdPid } = parseRun(out);
      // containerd, the shim daemon and its Wasm child: all of them must go
      const mine = processesUnder(dir).map((p) => p.pid);
      assert.ok(
        mine.some((pid) => /containerd-shim|shim\.cjs/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'))),
        'no shim process found while the container runs',
      );
      const tree = descendants(mine);
      d.child.kill('SIGINT');
      const { code } = await d.exited;
      const after = d.output();
      assert.equal(code, 130, after);
      assert.match(after, /Interrupted \(Ctrl-C\): cleaning up/);
      assert.match(after, /cleaned up: containerd stopped/);
      await assertNothingLeft(dir, [containerdPid, ...tree], after);
    } finally {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }
  });
});
