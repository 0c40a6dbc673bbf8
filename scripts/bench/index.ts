// `make bench`: wasmts against runc on one private containerd, both sides
// alternated so machine noise hits both. Prints a table, then JSON.
//   P1 ctr run --rm hello (wasm vs static native under runc)
//   P2 throughput: lifecycles/s, 4 at a time
//   P3 memory: one container, and per container when 10 share a pod's daemon
//   P4 tracing overhead: P1 with export on vs OTEL_SDK_DISABLED=true
//   P5 CPU-bound fib(35) (wasm vs native under runc)
//   P6 the shim's `start` vs `node -e 0`
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packImage } from '../../src/image/oci.js';
import { startOtlpReceiver } from '../../src/otlp/receiver.js';
import { listProcesses, startContainerd, type Containerd } from '../../test/helpers/containerd.js';
import { processTree, spareTrees, treeMemory, type TreeMemory } from './memory.js';
import { measureStart } from './start.js';
import { median, summarizePairs, type PairSummary } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WASM = 'io.containerd.wasmts.v1';
const RUNC = 'io.containerd.runc.v2';
const PAIRS = Number(process.env.BENCH_PAIRS ?? 17);
const LIFECYCLES = Number(process.env.BENCH_LIFECYCLES ?? 60);

const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

async function timeCtr(ctd: Containerd, args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await ctd.ctr(args, { timeoutMs: 60_000 });
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return elapsed;
}

/** fib(35) end to end, and the computation alone as the module measured it (FIB_TIME). */
async function timeFib(ctd: Containerd, runtime: string, image: string): Promise<{ wall: number; compute: number }> {
  const t0 = process.hrtime.bigint();
  const r = await ctd.ctr(['run', '--rm', '--env', 'FIB_TIME=1', '--runtime', runtime, image, `b${process.pid}-${seq++}`], { timeoutMs: 60_000 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const ns = /fib-ns (\d+)/.exec(r.stderr)?.[1];
  if (r.code !== 0 || !ns) throw new Error(`fib under ${runtime} failed (${r.code}): ${r.stderr.trim()}`);
  return { wall, compute: Number(ns) / 1e6 };
}

let seq = 0;
const runArgs = (runtime: string, image: string, ...cmd: string[]) => ['run', '--rm', '--runtime', runtime, image, `b${process.pid}-${seq++}`, ...cmd];

/** Runs `a` and `b` alternately (order flipped every pair) and returns both series without warm-up. */
async function pairs(n: number, a: () => Promise<number>, b: () => Promise<number>): Promise<PairSummary> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = -2; i < n; i++) {
    let x: number;
    let y: number;
    if (i % 2 === 0) {
      x = await a();
      y = await b();
    } else {
      y = await b();
      x = await a();
    }
    if (i >= 0) {
      as.push(x);
      bs.push(y);
    }
  }
  return summarizePairs(as, bs);
}

async function throughput(ctd: Containerd, runtime: string, image: string, count: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (next < count) {
      next++;
      await timeCtr(ctd, runArgs(runtime, image));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return count / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function shimPidOf(ctd: Containerd, id: string): number {
  return Number(fs.readFileSync(path.join(ctd.state, 'io.containerd.runtime.v2.task', ctd.namespace, id, 'shim.pid'), 'utf8'));
}

async function memory(ctd: Containerd, image: string, count: number, annotation?: string): Promise<TreeMemory> {
  const ids = Array.from({ length: count }, (_, i) => `mem-${process.pid}-${count}-${i}`);
  try {
    for (const id of ids) {
      const extra = annotation ? ['--annotation', annotation] : [];
      await timeCtr(ctd, ['run', '-d', ...extra, '--runtime', WASM, image, id, '/probe.wasm', 'daemon', '200']);
    }
    await new Promise((r) => setTimeout(r, 1500));
    return treeMemory(shimPidOf(ctd, ids[0]!));
  } finally {
    for (const id of ids) {
      await ctd.ctr(['task', 'kill', '-s', 'SIGKILL', id]).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const id of ids) {
      await ctd.ctr(['task', 'delete', id]).catch(() => undefined);
      await ctd.ctr(['container', 'delete', id]).catch(() => undefined);
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  say('building shim and modules');
  execFileSync('node', ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  execFileSync('bash', ['scripts/build-modules.sh'], { cwd: ROOT, stdio: 'inherit' });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-bench-'));
  const shimDir = path.join(tmp, 'bin');
  fs.mkdirSync(shimDir);
  fs.symlinkSync(path.join(ROOT, 'bin/containerd-shim-wasmts-v1'), path.join(shimDir, 'containerd-shim-wasmts-v1'));
  const mod = (name: string) => path.join(ROOT, 'build/modules', name);
  const images = [
    { ref: 'bench/hello-wasm:1', module: mod('hello.wasm') },
    { ref: 'bench/fib-wasm:1', module: mod('fib.wasm') },
    { ref: 'bench/probe-wasm:1', module: mod('probe.wasm') },
    { ref: 'bench/hello-native:1', module: mod('hello.native'), platform: { os: 'linux', architecture: 'amd64' } },
    { ref: 'bench/fib-native:1', module: mod('fib.native'), platform: { os: 'linux', architecture: 'amd64' } },
  ];
  const rx = await startOtlpReceiver({ httpPort: 0, grpcPort: null });
  let off: Containerd | undefined;
  let on: Containerd | undefined;
  try {
    say('starting two private containerds (tracing off, tracing on)');
    off = await startContainerd({ name: 'bench-off', shimDir, env: { OTEL_SDK_DISABLED: 'true' } });
    on = await startContainerd({ name: 'bench-on', shimDir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl } });
    for (const img of images) {
      const tar = path.join(tmp, `${img.ref.replace(/[/:]/g, '_')}.tar`);
      await packImage({ module: img.module, ref: img.ref, output: tar, ...(img.platform ? { platform: img.platform } : {}) });
      await off.importImage(tar);
      await on.importImage(tar);
    }
    const full = (ref: string) => `docker.io/${ref}`;
    const hw = full('bench/hello-wasm:1');
    const hn = full('bench/hello-native:1');

    say(`P1: ${PAIRS} pairs of ctr run --rm hello, wasmts vs runc`);
    const p1 = await pairs(PAIRS, () => timeCtr(off!, runArgs(WASM, hw)), () => timeCtr(off!, runArgs(RUNC, hn)));

    say(`P4: ${PAIRS} pairs of ctr run --rm hello, export on vs OTEL_SDK_DISABLED=true`);
    const p4 = await pairs(PAIRS, () => timeCtr(on!, runArgs(WASM, hw)), () => timeCtr(off!, runArgs(WASM, hw)));

    say('P5: 7 pairs of fib(35), wasmts vs runc');
    const fibW: { wall: number; compute: number }[] = [];
    const fibN: { wall: number; compute: number }[] = [];
    await pairs(7, async () => {
      const f = await timeFib(off!, WASM, full('bench/fib-wasm:1'));
      fibW.push(f);
      return f.wall;
    }, async () => {
      const f = await timeFib(off!, RUNC, full('bench/fib-native:1'));
      fibN.push(f);
      return f.wall;
    });
    // pairs() ran two warm-up pairs first: drop them.
    const p5 = {
      endToEnd: summarizePairs(fibW.slice(2).map((f) => f.wall), fibN.slice(2).map((f) => f.wall)),
      compute: summarizePairs(fibW.slice(2).map((f) => f.compute), fibN.slice(2).map((f) => f.compute)),
    };

    say(`P2: ${LIFECYCLES} lifecycles, 4 at a time, per side (in two alternating halves)`);
    const half = Math.ceil(LIFECYCLES / 2);
    const tw1 = await throughput(off, WASM, hw, half, 4);
    const tr1 = await throughput(off, RUNC, hn, half, 4);
    const tr2 = await throughput(off, RUNC, hn, LIFECYCLES - half, 4);
    const tw2 = await throughput(off, WASM, hw, LIFECYCLES - half, 4);
    const p2 = { wasmts: (tw1 + tw2) / 2, runc: (tr1 + tr2) / 2, ratio: (tw1 + tw2) / (tr1 + tr2) };

    say('P3: memory of one container, and of 10 sharing a pod daemon');
    const probe = full('bench/probe-wasm:1');
    const standalone = await memory(off, probe, 1);
    const spare = spareTrees(off.address).map(treeMemory).reduce(
      (a, b) => ({ processes: a.processes + b.processes, vmHwmMiB: a.vmHwmMiB + b.vmHwmMiB, pssMiB: a.pssMiB + b.pssMiB }),
      { processes: 0, vmHwmMiB: 0, pssMiB: 0 },
    );
    const pod = await memory(off, probe, 10, `io.kubernetes.cri.sandbox-id=bench-pod-${process.pid}`);
    const p3 = { standalone, pod, podPerContainer: { vmHwmMiB: pod.vmHwmMiB / 10, pssMiB: pod.pssMiB / 10 }, idleSpare: spare };

    say('P6: start vs node -e 0, 30 pairs');
    const p6 = measureStart(30);

    // Idle spares (and their warm children) are expected; anything else is a leak.
    const sparePids = new Set([...spareTrees(off.address), ...spareTrees(on.address)].flatMap((pid) => processTree(pid)));
    const leftovers = listProcesses(/dist\/shim\.cjs .*serve|wasm-child|dist\/shim\.cjs -namespace/).filter((p) => !sparePids.has(p.pid));
    const rows: [string, string, string, string, boolean][] = [
      ['P1 ctr run --rm hello', `${p1.ours.median.toFixed(0)} ms vs runc ${p1.baseline.median.toFixed(0)} ms`, `${p1.ratio.toFixed(2)}x`, '<= 0.80x', p1.ratio <= 0.8],
      ['P2 throughput (4 at a time)', `${p2.wasmts.toFixed(1)} vs runc ${p2.runc.toFixed(1)} tasks/s`, `${p2.ratio.toFixed(2)}x`, '>= 2x', p2.ratio >= 2],
      ['P3 standalone VmHWM', `${standalone.vmHwmMiB.toFixed(1)} MiB (${standalone.processes} processes; PSS ${standalone.pssMiB.toFixed(1)} MiB)`, '', '<= 90 MiB', standalone.vmHwmMiB <= 90],
      ['P3 per pod container PSS', `${p3.podPerContainer.pssMiB.toFixed(1)} MiB (10 containers, ${pod.processes} processes)`, '', '<= 25 MiB', p3.podPerContainer.pssMiB <= 25],
      ['P3 idle spare daemon (not counted above)', `VmHWM ${spare.vmHwmMiB.toFixed(1)} MiB, PSS ${spare.pssMiB.toFixed(1)} MiB (${spare.processes} processes)`, '', 'info', true],
      ['P4 tracing on vs off', `${p4.ours.median.toFixed(0)} vs ${p4.baseline.median.toFixed(0)} ms`, `${p4.ratio.toFixed(2)}x`, '<= 1.05x', p4.ratio <= 1.05],
      ['P5 fib(35) computation', `${p5.compute.ours.median.toFixed(0)} ms vs native ${p5.compute.baseline.median.toFixed(0)} ms`, `${p5.compute.ratio.toFixed(2)}x`, '<= 1.5x', p5.compute.ratio <= 1.5],
      ['P5 fib(35) ctr run --rm end to end', `${p5.endToEnd.ours.median.toFixed(0)} ms vs runc ${p5.endToEnd.baseline.median.toFixed(0)} ms`, `${p5.endToEnd.ratio.toFixed(2)}x`, '<= 1.5x', p5.endToEnd.ratio <= 1.5],
      ['P6 start vs node -e 0', `${p6.ours.median.toFixed(1)} vs ${p6.baseline.median.toFixed(1)} ms`, `${p6.ratio.toFixed(2)}x`, '<= 1.3x', p6.ratio <= 1.3],
    ];
    console.log(`\nwasmts benchmark — ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load ${os.loadavg()[0]!.toFixed(2)}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    console.log('| figure | measured | ratio | target | met |');
    console.log('|---|---|---|---|---|');
    for (const [name, measured, ratio, target, met] of rows) console.log(`| ${name} | ${measured} | ${ratio} | ${target} | ${met ? 'yes' : 'no'} |`);
    console.log(`\nleftover shim/child processes (besides idle spares): ${leftovers.length}`);
    const json = { machine: { cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, node: process.version, load: os.loadavg() }, P1: p1, P2: p2, P3: p3, P4: p4, P5: p5, P6: p6, medianP1WasmMs: median([p1.ours.median]), leftovers: leftovers.length };
    fs.mkdirSync(path.join(ROOT, 'build'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'build/bench.json'), JSON.stringify(json, null, 2));
    console.log(JSON.stringify(json));
  } finally {
    await off?.stop();
    await on?.stop();
    await rx.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    // Spares leave once their containerd's socket is gone (checked every 5 s).
    const addresses = [off?.address, on?.address].filter(Boolean) as string[];
    const deadline = Date.now() + 8_000;
    while (addresses.some((a) => spareTrees(a).length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const stuck = addresses.flatMap((a) => spareTrees(a));
    if (stuck.length) console.error(`bench: spare daemons still running after their containerd stopped: ${stuck.join(' ')}`);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
