// The load and soak phases, shared by scripts/soak.ts (full size) and
// test/hostile/soak-short.test.ts (a short version of each). Every container
// of the containerd reaches the one long-lived daemon of its key:
//   lifecycles  N sequential `ctr run --rm`, each checked (output or exit status);
//               the daemon's memory sampled along the way, early against late
//   pod         one socket (containers sharing a sandbox id) of that daemon
//               running M containers one after another: its RSS and fd count,
//               start vs end
//   parallel    P containers at once, each with its own output and exit status
//   oom         (soak only) probe.wasm growing to the wasm32 limit
// After each phase: a census of what the containers left (shims, Wasm
// children, mounts, bundle dirs, sockets) and containerd's fd count.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type Containerd,
  ctrLines,
  fdCount,
  median,
  rssKb,
  SANDBOX_ID_ANNOTATION,
  settled,
  settledProblems,
  shimProcesses,
  sleep,
  statusKb,
  type Suite,
  until,
} from '../harness/index.js';

export interface Leak {
  phase: string;
  what: string;
}

export interface PhaseResult {
  phase: string;
  runs: number;
  failures: string[];
  leaks: Leak[];
  ms: number;
  figures: Record<string, number | string>;
}

export interface SoakOptions {
  log?: (line: string) => void;
}

/** The daemons seen in the samples (one, with a long-lived shared daemon). */
function daemonPids(samples: { daemon: number }[]): number[] {
  return [...new Set(samples.map((x) => x.daemon))];
}

/** containerd's fd count, once it stops moving (up to timeoutMs). */
async function settledFds(c: Containerd, atMost: number, timeoutMs = 10_000): Promise<number> {
  return settled(
    () => fdCount(c.pid),
    (n) => n <= atMost,
    timeoutMs,
    200,
  );
}

/** The leak census after a phase: what the ids left, and containerd's fds against its baseline. */
async function leaksAfter(
  phase: string,
  s: Suite,
  groupings: string[],
  ctrdFdsBefore: number,
): Promise<{ leaks: Leak[]; ctrdFds: number }> {
  // start/delete exit at once; the daemon lets go of a finished container's files within moments
  const leaks: Leak[] = (await settledProblems(s.c, groupings, 12_000)).map((what) => ({ phase, what }));
  for (const id of ctrLines(await s.ctr(['task', 'ls', '-q']))) leaks.push({ phase, what: `task still listed: ${id}` });
  for (const id of ctrLines(await s.ctr(['container', 'ls', '-q'])))
    leaks.push({ phase, what: `container still listed: ${id}` });
  const ctrdFds = await settledFds(s.c, ctrdFdsBefore);
  if (ctrdFds > ctrdFdsBefore) leaks.push({ phase, what: `containerd holds ${ctrdFds} fds, ${ctrdFdsBefore} before` });
  return { leaks, ctrdFds };
}

// ---------------------------------------------------------------------------

/**
 * N sequential `ctr run --rm`: even runs echo a token (checked on stdout), odd
 * ones exit with a status (checked); every `sampleEvery`-th run sleeps 0.3 s
 * so the daemon's RSS can be read while it serves (figures only: RSS swings
 * by ~30 MiB with V8's collector; scripts/soak.ts judges the daemon's memory
 * on its floor). A daemon that changed along the way is a leak.
 */
export async function lifecycles(
  s: Suite,
  n: number,
  o: SoakOptions & { sampleEvery?: number; warmup?: number } = {},
): Promise<PhaseResult> {
  const phase = 'lifecycles';
  const failures: string[] = [];
  const ids: string[] = [];
  const samples: { i: number; daemon: number; rssKb: number; hwmKb: number }[] = [];
  const sampleEvery = o.sampleEvery ?? 20;
  const ctrdFds0 = fdCount(s.c.pid);
  const ctrdRss0 = rssKb(s.c.pid);
  const t0 = Date.now();
  let lastReport = t0;
  const warmup = o.warmup ?? Math.floor(n / 10);
  for (let i = 0; i < n; i++) {
    const id = s.id(`lc${i}`);
    ids.push(id);
    const sample = i % sampleEvery === 0;
    const kind = sample ? 'sleep' : i % 2 === 0 ? 'echo' : 'exit';
    const args =
      kind === 'sleep'
        ? ['/probe.wasm', 'sleep', '0.3']
        : kind === 'echo'
          ? ['/probe.wasm', 'args', `token-${i}`]
          : ['/probe.wasm', 'exit', String(i % 250)];
    let watcher: NodeJS.Timeout | undefined;
    if (sample) {
      // read the daemon's memory while the module sleeps
      const pidFile = path.join(s.c.bundleDir(id), 'shim.pid');
      let done = false;
      watcher = setInterval(() => {
        if (done) return;
        try {
          const pid = Number(fs.readFileSync(pidFile, 'utf8'));
          const rss = statusKb(pid, 'VmRSS');
          const tasks = fs.existsSync(path.join(s.c.bundleDir(id), 'init.pid'));
          if (rss > 0 && tasks) {
            done = true;
            setTimeout(
              () => samples.push({ i, daemon: pid, rssKb: statusKb(pid, 'VmRSS'), hwmKb: statusKb(pid, 'VmHWM') }),
              150,
            );
          }
        } catch {
          /* not there yet */
        }
      }, 20);
    }
    try {
      const r = await s.run(args, { id, timeoutMs: 60_000 });
      const want = kind === 'exit' ? i % 250 : 0;
      if (r.code !== want) failures.push(`${id}: exit ${r.code}, want ${want}: ${r.stderr.trim()}`);
      else if (kind === 'echo' && r.stdout !== `token-${i}\n`)
        failures.push(`${id}: stdout ${JSON.stringify(r.stdout)}`);
      else if (kind === 'sleep' && r.stdout !== 'slept\n') failures.push(`${id}: stdout ${JSON.stringify(r.stdout)}`);
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
      await s.cleanup(id);
    } finally {
      if (watcher) clearInterval(watcher);
    }
    if (o.log && Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      o.log(`  lifecycles: ${i + 1}/${n} (${failures.length} failures, ${((Date.now() - t0) / (i + 1)) | 0} ms each)`);
    }
  }
  const ms = Date.now() - t0;
  const { leaks, ctrdFds } = await leaksAfter(phase, s, ids, ctrdFds0);
  // early: the first samples after the warm-up (JIT, heap and caches settling), against the last ones
  const settled = samples.filter((x) => x.i >= warmup);
  const k = Math.max(1, Math.min(5, Math.floor(settled.length / 2)));
  const first = settled.slice(0, k);
  const last = settled.slice(-k);
  const daemons = daemonPids(samples);
  const growthMiB = (median(last.map((x) => x.rssKb)) - median(first.map((x) => x.rssKb))) / 1024;
  if (daemons.length > 1)
    leaks.push({
      phase,
      what: `the containers were served by ${daemons.length} daemons in turn (${daemons.join(', ')}), not one long-lived daemon`,
    });
  return {
    phase,
    runs: n,
    failures,
    leaks,
    ms,
    figures: {
      'ms per lifecycle': Math.round(ms / n),
      'daemons serving them': daemons.join(', '),
      'daemon RSS samples': samples.length,
      'daemon RSS MiB, first runs (median)': +(median(first.map((x) => x.rssKb)) / 1024).toFixed(1),
      'daemon RSS MiB, last runs (median)': +(median(last.map((x) => x.rssKb)) / 1024).toFixed(1),
      'daemon peak RSS MiB, first runs (max VmHWM)': +(Math.max(0, ...first.map((x) => x.hwmKb)) / 1024).toFixed(1),
      'daemon peak RSS MiB, last runs (max VmHWM)': +(Math.max(0, ...last.map((x) => x.hwmKb)) / 1024).toFixed(1),
      [`daemon RSS growth MiB (last ${k} samples against the first ${k} after run ${warmup})`]: +growthMiB.toFixed(1),
      'containerd fds before/after': `${ctrdFds0}/${ctrdFds}`,
      'containerd RSS MiB before/after': `${(ctrdRss0 / 1024).toFixed(1)}/${(rssKb(s.c.pid) / 1024).toFixed(1)}`,
    },
  };
}

/**
 * A pod on the long-lived daemon: a holder container keeps the pod's socket
 * open while `m` containers of the same sandbox run through it one after
 * another. The daemon's RSS and fd count are sampled after a warm-up and at
 * the end.
 */
export async function podDaemon(
  s: Suite,
  m: number,
  o: SoakOptions & { warmup?: number; maxGrowthMiB?: number } = {},
): Promise<PhaseResult> {
  const phase = 'pod';
  const failures: string[] = [];
  const leaks: Leak[] = [];
  const sandbox = `${s.name}-pod-${Date.now().toString(36)}`;
  const annotation = ['--annotation', `${SANDBOX_ID_ANNOTATION}=${sandbox}`];
  const holder = s.id('podholder');
  const ids = [holder];
  const ctrdFds0 = fdCount(s.c.pid);
  const warmup = Math.min(o.warmup ?? 20, Math.floor(m / 3));
  const t0 = Date.now();
  await s.runDetached(['/probe.wasm', 'daemon', '1000'], { id: holder, flags: [...annotation, '--null-io'] });
  const daemon = Number(fs.readFileSync(path.join(s.c.bundleDir(holder), 'shim.pid'), 'utf8'));
  const samples: { i: number; rssKb: number; fds: number }[] = [];
  const sample = (i: number) => samples.push({ i, rssKb: statusKb(daemon, 'VmRSS'), fds: fdCount(daemon) });
  let start: { rssKb: number; fds: number } | undefined;
  let lastReport = t0;
  for (let i = 0; i < m; i++) {
    const id = s.id(`pod${i}`);
    ids.push(id);
    try {
      const r = await s.run(['/probe.wasm', 'args', `pod-${i}`], { id, flags: annotation, timeoutMs: 60_000 });
      if (r.code !== 0 || r.stdout !== `pod-${i}\n`)
        failures.push(`${id}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}: ${r.stderr.trim()}`);
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
      await s.cleanup(id);
    }
    const shimNow = Number(fs.readFileSync(path.join(s.c.bundleDir(holder), 'shim.pid'), 'utf8'));
    if (shimNow !== daemon) failures.push(`${id}: the pod's daemon changed (${daemon} → ${shimNow})`);
    if (i + 1 === warmup) {
      await sleep(300);
      sample(i + 1);
      start = samples[samples.length - 1];
    } else if ((i + 1) % 10 === 0) sample(i + 1);
    if (o.log && Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      o.log(
        `  pod: ${i + 1}/${m} containers through daemon ${daemon} (RSS ${(statusKb(daemon, 'VmRSS') / 1024).toFixed(1)} MiB, ${fdCount(daemon)} fds)`,
      );
    }
  }
  await sleep(300);
  sample(m);
  const end = samples[samples.length - 1];
  start ??= samples[0];
  const peakKb = Math.max(...samples.map((x) => x.rssKb));
  const hwmKb = statusKb(daemon, 'VmHWM');
  const growthMiB = (end.rssKb - start.rssKb) / 1024;
  const maxGrowth = o.maxGrowthMiB ?? 40;
  if (growthMiB > maxGrowth)
    leaks.push({
      phase,
      what: `pod daemon RSS grew ${growthMiB.toFixed(1)} MiB (from ${(start.rssKb / 1024).toFixed(1)} to ${(end.rssKb / 1024).toFixed(1)} MiB over ${m - warmup} containers; limit ${maxGrowth})`,
    });
  if (end.fds > start.fds)
    leaks.push({ phase, what: `pod daemon holds ${end.fds} fds, ${start.fds} after the warm-up` });
  // the holder goes last: then the pod's socket closes and the daemon holds nothing of the pod
  await s.ctr(['task', 'kill', '-s', 'SIGKILL', holder]);
  await until('the pod holder to stop', async () => (await s.tasks()).get(holder)?.status === 'STOPPED', 15_000).catch(
    () => undefined,
  );
  await s.ctr(['task', 'delete', holder]);
  await s.ctr(['container', 'delete', holder]);
  const ms = Date.now() - t0;
  const after = await leaksAfter(phase, s, [sandbox, ...ids], ctrdFds0);
  leaks.push(...after.leaks);
  return {
    phase,
    runs: m,
    failures,
    leaks,
    ms,
    figures: {
      'pod daemon pid': daemon,
      'containers through it': m,
      [`pod daemon RSS MiB after ${warmup} (warm-up)`]: +(start.rssKb / 1024).toFixed(1),
      [`pod daemon RSS MiB after ${m}`]: +(end.rssKb / 1024).toFixed(1),
      'pod daemon RSS growth MiB': +growthMiB.toFixed(1),
      'pod daemon peak RSS MiB (sampled / VmHWM)': `${(peakKb / 1024).toFixed(1)} / ${(hwmKb / 1024).toFixed(1)}`,
      'pod daemon fds after warm-up/end': `${start.fds}/${end.fds}`,
      'containerd fds before/after': `${ctrdFds0}/${after.ctrdFds}`,
    },
  };
}

/**
 * P containers at once. Output: each module blocks on stdin until all of them
 * run, then echoes its own line (ctr can drop the output of a module that
 * exits within ~100 ms of opening its FIFO when starved of CPU; see
 * test/e2e/robustness.test.ts). Exit statuses: P more at once, no holding.
 */
export async function parallel(s: Suite, p: number, o: SoakOptions = {}): Promise<PhaseResult> {
  const phase = 'parallel';
  const failures: string[] = [];
  const ctrdFds0 = fdCount(s.c.pid);
  const t0 = Date.now();
  const ids = Array.from({ length: p }, (_, i) => s.id(`par${i}`));
  const runs = ids.map((id, i) =>
    s.spawnRun(['/probe.wasm', 'stdin', `container ${i} read: `], { id, timeoutMs: 60_000 + p * 2_000 }),
  );
  let peakShims = 0;
  let peakDaemons = 0;
  const sampleShims = () => {
    const all = shimProcesses(s.c.address, s.c.pid);
    peakShims = Math.max(peakShims, all.length);
    peakDaemons = Math.max(peakDaemons, all.filter((x) => x.daemon).length);
  };
  const sampler = setInterval(sampleShims, 100);
  try {
    await until(
      `all ${p} containers to run`,
      async () => {
        const tasks = await s.tasks();
        return ids.every((id) => tasks.get(id)?.status === 'RUNNING');
      },
      30_000 + p * 2_000,
      250,
    );
    o.log?.(`  parallel: ${p} containers running after ${Date.now() - t0} ms`);
    await sleep(200);
    runs.forEach((r, i) => r.write(`${ids[i]}\n`));
    const results = await Promise.all(
      runs.map((r) => r.result.catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message, signal: null }))),
    );
    results.forEach((r, i) => {
      if (r.code !== 0 || r.stdout !== `container ${i} read: ${ids[i]}\n`)
        failures.push(`${ids[i]}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}: ${r.stderr.trim()}`);
    });
  } catch (err) {
    failures.push(`output round: ${(err as Error).message}`);
  } finally {
    runs.forEach((r) => r.kill());
  }
  const codeIds = Array.from({ length: p }, (_, i) => s.id(`parx${i}`));
  const codes = await Promise.all(
    codeIds.map((id, i) =>
      s
        .run(['/probe.wasm', 'exit', String(10 + (i % 200))], { id, timeoutMs: 60_000 + p * 2_000 })
        .catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message })),
    ),
  );
  codes.forEach((r, i) => {
    if (r.code !== 10 + (i % 200))
      failures.push(`${codeIds[i]}: exit ${r.code}, want ${10 + (i % 200)}: ${r.stderr.trim()}`);
  });
  clearInterval(sampler);
  const ms = Date.now() - t0;
  for (const id of [...ids, ...codeIds]) if (failures.some((f) => f.startsWith(`${id}:`))) await s.cleanup(id);
  const { leaks, ctrdFds } = await leaksAfter(phase, s, [...ids, ...codeIds], ctrdFds0);
  return {
    phase,
    runs: 2 * p,
    failures,
    leaks,
    ms,
    figures: {
      'at once': p,
      'containers run': 2 * p,
      'peak shim processes': peakShims,
      'peak daemons': peakDaemons,
      'containerd fds before/after': `${ctrdFds0}/${ctrdFds}`,
    },
  };
}

/** probe.wasm allocating 16 MiB chunks until malloc fails at the wasm32 limit: its own exit status 3. */
export async function outOfMemory(s: Suite): Promise<PhaseResult> {
  const phase = 'oom';
  const failures: string[] = [];
  const ctrdFds0 = fdCount(s.c.pid);
  const id = s.id('oom');
  const t0 = Date.now();
  const r = await s
    .run(['/probe.wasm', 'oom', '16'], { id, timeoutMs: 180_000 })
    .catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
  const m = /^oom: allocated (\d+) MiB/.exec(r.stdout);
  if (r.code !== 3 || !m)
    failures.push(`${id}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}: ${r.stderr.trim()}`);
  const ms = Date.now() - t0;
  const { leaks } = await leaksAfter(phase, s, [id], ctrdFds0);
  return {
    phase,
    runs: 1,
    failures,
    leaks,
    ms,
    figures: { 'allocated MiB before malloc failed': m ? Number(m[1]) : 'n/a', 'exit status': r.code },
  };
}

export function formatResult(r: PhaseResult): string {
  const lines = [
    `${r.phase}: ${r.runs} runs in ${(r.ms / 1000).toFixed(1)} s, ${r.failures.length} failures, ${r.leaks.length} leaks`,
  ];
  for (const [k, v] of Object.entries(r.figures)) lines.push(`  ${k}: ${v}`);
  for (const f of r.failures.slice(0, 20)) lines.push(`  FAILURE ${f}`);
  if (r.failures.length > 20) lines.push(`  … ${r.failures.length - 20} more failures`);
  for (const l of r.leaks) lines.push(`  LEAK ${l.what}`);
  return lines.join('\n');
}
