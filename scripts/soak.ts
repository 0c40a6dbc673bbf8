// Load and soak on a private containerd, every container on its one
// long-lived shim daemon (see test/hostile/soak-lib.ts):
//   1. N sequential `ctr run --rm` lifecycles, each checked, with the daemon's
//      RSS read every 500 ms: its floor must stay flat (see MAX_GROWTH_MIB);
//   2. a pod (one socket of the daemon) running M containers one after
//      another: the daemon's RSS and fd count at the start vs the end;
//   3. P containers at once, each with its own output and exit status;
//   4. a module growing to the wasm32 memory limit (malloc fails, exit 3).
// After each phase and at the end: leaked processes, mounts, sockets, bundle
// dirs, containerd fds, and a daemon still holding a finished container's
// files; after containerd stops, the daemon must leave by itself and take its
// state dir (lock, ready and control sockets) along. Prints the figures;
// exits 1 on any failure or leak.
//
//   node --import tsx scripts/soak.ts [--lifecycles 1000] [--pod 300] [--parallel 50] [--no-oom] [--max-growth-mib 16]
import * as fs from 'node:fs';
import {
  addressArgPattern,
  daemonStateDirs,
  listProcesses,
  processAlive,
  settled,
  setupSuite,
  shimDaemons,
  sleep,
  SOCKET_DIR,
  statusKb,
  type Suite,
} from '../test/harness/index.js';
import {
  formatResult,
  lifecycles,
  outOfMemory,
  parallel,
  podDaemon,
  type PhaseResult,
} from '../test/hostile/soak-lib.js';

/**
 * How much the daemon's RSS floor may rise: the least RSS over the pod phase
 * (after all the lifecycles) against the least over the early lifecycles
 * (10-30 % of them, past the warm-up), read every 500 ms. RSS read at any one
 * moment swings by ~30 MiB with V8's collector (it plateaued at ~94 MiB for
 * the last lifecycles, idle for a minute, and fell to ~66 MiB at the next
 * collection), so only its floor tells what the daemon retains. Whatever one
 * container would leave behind in the daemon (its ServedSocket, TaskService,
 * tracer, a log fd's buffers) is tens of KiB, so a per-container leak raises
 * the floor by tens of MiB over 1000 lifecycles; a flat daemon's floor still
 * rises by ~10 MiB (code and caches of paths first taken late, heap pages V8
 * keeps). 16 MiB sits between: it catches a leak of ~16 KiB per container.
 */
const MAX_GROWTH_MIB = 16;

function num(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} needs a whole number`);
  return v;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

/** The RSS of the containerd's daemons every 500 ms; least(pid, from, to) is one daemon's floor over a time window. */
function rssWatcher(address: string): {
  stop(): void;
  least(pid: number, from: number, to: number): { pid: number; kb: number } | undefined;
} {
  const samples: { at: number; pid: number; kb: number }[] = [];
  const timer = setInterval(() => {
    for (const d of shimDaemons(address)) {
      const kb = statusKb(d.pid, 'VmRSS');
      if (kb > 0) samples.push({ at: Date.now(), pid: d.pid, kb });
    }
  }, 500);
  return {
    stop: () => clearInterval(timer),
    least(pid, from, to) {
      const window = samples.filter((x) => x.pid === pid && x.at >= from && x.at <= to);
      return window.length ? window.reduce((a, b) => (b.kb < a.kb ? b : a)) : undefined;
    },
  };
}

function socketDirEntries(): Set<string> {
  try {
    return new Set(fs.readdirSync(SOCKET_DIR));
  } catch {
    return new Set();
  }
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    log(
      'usage: node --import tsx scripts/soak.ts [--lifecycles 1000] [--pod 300] [--parallel 50] [--no-oom] [--max-growth-mib 16]',
    );
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('the soak needs root (it runs a private containerd)');
  const n = num('lifecycles', 1000);
  const m = num('pod', 300);
  const p = num('parallel', 50);
  const oom = !process.argv.includes('--no-oom');
  const maxGrowthMiB = num('max-growth-mib', MAX_GROWTH_MIB);
  const t0 = Date.now();
  const socketsBefore = socketDirEntries();
  log(`soak: ${n} lifecycles, a pod daemon through ${m} containers, ${p} at once${oom ? ', out of memory' : ''}`);

  let s: Suite | undefined;
  const results: PhaseResult[] = [];
  const endLeaks: string[] = [];
  let floor: { early: number; late: number } | undefined;
  /** The socket files of every container (and pod) of this soak: all must be gone at the end. */
  let ours = new Set<string>();
  try {
    // a copy of the shim: a `make build` meanwhile must not swap the code (and the daemon) under the soak
    s = await setupSuite('soak', { frozenShim: true });
    log(`soak: containerd ${s.c.pid} in ${s.c.tmp} (${s.c.snapshotter})`);
    // one run first, so the baselines include whatever containerd sets up lazily
    const warm = await s.run(['/probe.wasm', 'exit', '0'], { id: s.id('warmup') });
    if (warm.code !== 0) throw new Error(`warm-up run failed (${warm.code}): ${warm.stderr}`);
    await sleep(3_000);

    const phase = async (name: string, fn: () => Promise<PhaseResult>) => {
      log(`soak: ${name} …`);
      const r = await fn();
      results.push(r);
      log(formatResult(r));
    };
    const rss = rssWatcher(s.c.address);
    const lcStart = Date.now();
    if (n > 0) await phase('lifecycles', () => lifecycles(s!, n, { log, sampleEvery: 25 }));
    const lcEnd = Date.now();
    // the daemon that served the lifecycles (a burst may start a short-lived second one)
    const served = Number(results.find((r) => r.phase === 'lifecycles')?.figures['daemons serving them']);
    if (m > 0) await phase('pod daemon', () => podDaemon(s!, m, { log }));
    const podEnd = Date.now();
    rss.stop();
    if (n > 0) {
      const span = lcEnd - lcStart;
      const early = rss.least(served, lcStart + 0.1 * span, lcStart + 0.3 * span);
      const late = m > 0 ? rss.least(served, lcEnd, podEnd) : rss.least(served, lcStart + 0.8 * span, lcEnd);
      if (early && late && early.pid === late.pid) {
        floor = { early: early.kb / 1024, late: late.kb / 1024 };
        if (floor.late - floor.early > maxGrowthMiB) {
          endLeaks.push(
            `daemon ${early.pid}'s RSS floor rose ${(floor.late - floor.early).toFixed(1)} MiB (${floor.early.toFixed(1)} MiB early in the lifecycles, ${floor.late.toFixed(1)} MiB after them; limit ${maxGrowthMiB})`,
          );
        }
      } else {
        endLeaks.push(
          `no RSS floor of the lifecycles' daemon (${results.find((r) => r.phase === 'lifecycles')?.figures['daemons serving them']}) early and late to compare`,
        );
      }
    }
    if (p > 0) await phase('parallel', () => parallel(s!, p, { log }));
    if (oom) await phase('out of memory', () => outOfMemory(s!));

    endLeaks.push(...(await s.leftovers()));
    const daemons = shimDaemons(s.c.address);
    if (daemons.length !== 1)
      endLeaks.push(`${daemons.length} daemons at the end, one expected: ${daemons.map((d) => d.pid).join(', ')}`);
    const stateDirs = daemonStateDirs(s.c.address);
    // Stop containerd the way an operator would: the daemon notices (it checks
    // every 2 s) and leaves by itself, taking its state dir along.
    const addressRe = addressArgPattern(s.c.address);
    const ctrd = s.c.pid;
    process.kill(ctrd, 'SIGTERM');
    await settled(
      () => processAlive(ctrd),
      (alive) => !alive,
      15_000,
    );
    const shims = await settled(
      () => listProcesses(addressRe),
      (left) => left.length === 0,
      10_000,
    );
    for (const proc of shims)
      endLeaks.push(`shim process still running 10 s after containerd stopped: ${proc.pid} ${proc.cmdline}`);
    for (const dir of stateDirs)
      if (fs.existsSync(dir))
        endLeaks.push(`daemon state dir left after the daemon left: ${dir} (${fs.readdirSync(dir).join(', ')})`);
    ours = new Set(s.ids.map((id) => s!.socketFor(id)));
  } finally {
    await s?.teardown();
  }
  for (const p of ours)
    if (fs.existsSync(p)) endLeaks.push(`socket file left in ${SOCKET_DIR} by this soak's containers: ${p}`);
  // other containerds on this machine may add files meanwhile: reported, not counted
  const others = [...socketDirEntries()].filter((f) => !socketsBefore.has(f) && !ours.has(`${SOCKET_DIR}/${f}`));

  const failures = results.reduce((a, r) => a + r.failures.length, 0);
  const leaks = results.reduce((a, r) => a + r.leaks.length, 0) + endLeaks.length;
  const containers = results.reduce((a, r) => a + r.runs, 0);
  const lc = results.find((r) => r.phase === 'lifecycles');
  const pod = results.find((r) => r.phase === 'pod');
  log('');
  log('soak summary');
  log(`  lifecycles run: ${lc?.runs ?? 0} sequential, ${containers} containers in all`);
  log(`  failures: ${failures}`);
  log(`  leaks found: ${leaks}`);
  for (const l of endLeaks) log(`    LEAK ${l}`);
  for (const r of results) for (const l of r.leaks) log(`    LEAK (${r.phase}) ${l.what}`);
  if (lc) {
    if (floor)
      log(
        `  daemon RSS floor, early lifecycles vs after them: ${floor.early.toFixed(1)} vs ${floor.late.toFixed(1)} MiB; rise ${(floor.late - floor.early).toFixed(1)} MiB (limit ${maxGrowthMiB})`,
      );
    log(
      `  daemon RSS while serving, early vs late lifecycles (median): ${lc.figures['daemon RSS MiB, first runs (median)']} vs ${lc.figures['daemon RSS MiB, last runs (median)']} MiB`,
    );
    log(
      `  daemon peak RSS, first vs last lifecycles: ${lc.figures['daemon peak RSS MiB, first runs (max VmHWM)']} vs ${lc.figures['daemon peak RSS MiB, last runs (max VmHWM)']} MiB`,
    );
    log(`  containerd fds before/after the lifecycles: ${lc.figures['containerd fds before/after']}`);
  }
  if (pod) {
    const start = Object.entries(pod.figures).find(([k]) => k.includes('(warm-up)'));
    const end = Object.entries(pod.figures).find(
      ([k]) => k.startsWith('pod daemon RSS MiB after') && !k.includes('warm-up'),
    );
    log(
      `  pod daemon RSS, start vs end: ${start?.[1]} vs ${end?.[1]} MiB (${start?.[0].replace('pod daemon RSS MiB ', '')} / ${end?.[0].replace('pod daemon RSS MiB ', '')}); fds ${pod.figures['pod daemon fds after warm-up/end']}`,
    );
  }
  if (others.length) log(`  (new in ${SOCKET_DIR} meanwhile, not from this soak's shims: ${others.length})`);
  log(`  container socket files checked: ${ours.size}`);
  log(`  time: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return failures === 0 && leaks === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
