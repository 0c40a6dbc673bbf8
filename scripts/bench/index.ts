// `make bench`: wasmts against runc on one private containerd, both sides
// alternated so machine noise hits both. Prints a table, then JSON.
//   P1 ctr run --rm hello (wasm vs static native under runc)
//   P2 throughput: lifecycles/s, 4 at a time
//   P3 memory: PSS per container with 10 running at once (every process running
//      the shim's code), against an idle bare `node` process and runc's per container
//   P4 tracing overhead: P1 with export on vs OTEL_SDK_DISABLED=true
//   P5 CPU-bound fib(35) (wasm vs native under runc)
//   P6 the front end's `start` and `delete` (fast path) vs `node -e 0`
//   P7 a WASI 0.2 component, cold (transpile) and warm (cache hit), vs the same program as a module
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packImage } from '../../src/image/oci.js';
import { startOtlpReceiver } from '../../src/otlp/receiver.js';
import {
  type Containerd,
  DIST,
  escapeRegExp,
  listProcesses,
  MODULES,
  REPO,
  settled,
  SHIM_BIN,
  SHIM_NAME,
  sleep,
  startContainerd,
} from '../../test/harness/index.js';
import { daemonTrees, processTree, runcShimTrees, treeMemory, type TreeMemory } from './memory.js';
import { measureFrontEnd } from './start.js';
import { timeline, type TimelineRow } from './timeline.js';
import { componentStart } from './component.js';
import { median, summarizePairs, type PairSummary } from './stats.js';

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
  const r = await ctd.ctr(
    ['run', '--rm', '--env', 'FIB_TIME=1', '--runtime', runtime, image, `b${process.pid}-${seq++}`],
    { timeoutMs: 60_000 },
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const ns = /fib-ns (\d+)/.exec(r.stderr)?.[1];
  if (r.code !== 0 || !ns) throw new Error(`fib under ${runtime} failed (${r.code}): ${r.stderr.trim()}`);
  return { wall, compute: Number(ns) / 1e6 };
}

let seq = 0;
const runArgs = (runtime: string, image: string, ...cmd: string[]) => [
  'run',
  '--rm',
  '--runtime',
  runtime,
  image,
  `b${process.pid}-${seq++}`,
  ...cmd,
];

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

async function throughput(
  ctd: Containerd,
  runtime: string,
  image: string,
  count: number,
  concurrency: number,
): Promise<number> {
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

interface MemoryFigures {
  wasmts: TreeMemory;
  runc: TreeMemory;
  /** PSS of an idle `node` process, measured while the containers run. */
  bareNodePssMiB: number;
  perContainer: { wasmtsPssMiB: number; runcPssMiB: number };
}

/** PSS of an idle bare `node` process, measured now. */
async function bareNodePss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  try {
    await sleep(1000);
    return treeMemory(child.pid!).pssMiB;
  } finally {
    child.kill('SIGKILL');
  }
}

/** `count` containers running at once on each side; every process of either runtime counted, per container. */
async function memory(ctd: Containerd, wasmImage: string, nativeImage: string, count: number): Promise<MemoryFigures> {
  const ids: string[] = [];
  const runDetached = async (runtime: string, image: string, prefix: string, cmd: string[]) => {
    for (let i = 0; i < count; i++) {
      const id = `${prefix}-${process.pid}-${i}`;
      ids.push(id);
      await timeCtr(ctd, ['run', '-d', '--runtime', runtime, image, id, ...cmd]);
    }
  };
  try {
    await runDetached(WASM, wasmImage, 'memw', ['/probe.wasm', 'daemon', '200']);
    await runDetached(RUNC, nativeImage, 'memn', ['/probe.native', 'daemon', '200']);
    await sleep(1500);
    const wasmts = treeMemory(...daemonTrees(ctd.address));
    const runc = treeMemory(...runcShimTrees(ctd.address));
    const bareNodePssMiB = await bareNodePss();
    return {
      wasmts,
      runc,
      bareNodePssMiB,
      perContainer: { wasmtsPssMiB: wasmts.pssMiB / count, runcPssMiB: runc.pssMiB / count },
    };
  } finally {
    for (const id of ids) await ctd.ctr(['task', 'kill', '-s', 'SIGKILL', id]).catch(() => undefined);
    await sleep(300);
    for (const id of ids) {
      await ctd.ctr(['task', 'delete', id]).catch(() => undefined);
      await ctd.ctr(['container', 'delete', id]).catch(() => undefined);
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  say('building shim and modules');
  execFileSync('node', ['scripts/build.mjs'], { cwd: REPO, stdio: 'inherit' });
  execFileSync('bash', ['scripts/build-modules.sh'], { cwd: REPO, stdio: 'inherit' });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-bench-'));
  const shimDir = path.join(tmp, 'bin');
  fs.mkdirSync(shimDir);
  fs.symlinkSync(SHIM_BIN, path.join(shimDir, SHIM_NAME));
  const mod = (name: string) => path.join(MODULES, name);
  const images = [
    { ref: 'bench/hello-wasm:1', module: mod('hello.wasm') },
    { ref: 'bench/fib-wasm:1', module: mod('fib.wasm') },
    { ref: 'bench/probe-wasm:1', module: mod('probe.wasm') },
    { ref: 'bench/hello-native:1', module: mod('hello.native'), platform: { os: 'linux', architecture: 'amd64' } },
    { ref: 'bench/probe-native:1', module: mod('probe.native'), platform: { os: 'linux', architecture: 'amd64' } },
    { ref: 'bench/fib-native:1', module: mod('fib.native'), platform: { os: 'linux', architecture: 'amd64' } },
  ];
  const rx = await startOtlpReceiver({ httpPort: 0, grpcPort: null });
  let off: Containerd | undefined;
  let on: Containerd | undefined;
  try {
    say('starting two private containerds (tracing off, tracing on)');
    const componentCache = path.join(tmp, 'component-cache');
    off = await startContainerd({
      name: 'bench-off',
      shimDir,
      env: { OTEL_SDK_DISABLED: 'true', WASMTS_COMPONENT_CACHE: componentCache },
    });
    on = await startContainerd({ name: 'bench-on', shimDir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl } });
    for (const img of images) {
      const tar = path.join(tmp, `${img.ref.replace(/[/:]/g, '_')}.tar`);
      await packImage({
        module: img.module,
        ref: img.ref,
        output: tar,
        ...(img.platform ? { platform: img.platform } : {}),
      });
      await off.importImage(tar);
      await on.importImage(tar);
    }
    const full = (ref: string) => `docker.io/${ref}`;
    const hw = full('bench/hello-wasm:1');
    const hn = full('bench/hello-native:1');

    say(`P1: ${PAIRS} pairs of ctr run --rm hello, wasmts vs runc`);
    const p1 = await pairs(
      PAIRS,
      () => timeCtr(off!, runArgs(WASM, hw)),
      () => timeCtr(off!, runArgs(RUNC, hn)),
    );

    say(`P4: ${PAIRS} pairs of ctr run --rm hello, export on vs OTEL_SDK_DISABLED=true`);
    const p4 = await pairs(
      PAIRS,
      () => timeCtr(on!, runArgs(WASM, hw)),
      () => timeCtr(off!, runArgs(WASM, hw)),
    );

    say('P5: 7 pairs of fib(35), wasmts vs runc');
    const fibW: { wall: number; compute: number }[] = [];
    const fibN: { wall: number; compute: number }[] = [];
    await pairs(
      7,
      async () => {
        const f = await timeFib(off!, WASM, full('bench/fib-wasm:1'));
        fibW.push(f);
        return f.wall;
      },
      async () => {
        const f = await timeFib(off!, RUNC, full('bench/fib-native:1'));
        fibN.push(f);
        return f.wall;
      },
    );
    // pairs() ran two warm-up pairs first: drop them.
    const p5 = {
      endToEnd: summarizePairs(
        fibW.slice(2).map((f) => f.wall),
        fibN.slice(2).map((f) => f.wall),
      ),
      compute: summarizePairs(
        fibW.slice(2).map((f) => f.compute),
        fibN.slice(2).map((f) => f.compute),
      ),
    };

    say(`P2: ${LIFECYCLES} lifecycles, 4 at a time, per side (in two alternating halves)`);
    const half = Math.ceil(LIFECYCLES / 2);
    const tw1 = await throughput(off, WASM, hw, half, 4);
    const tr1 = await throughput(off, RUNC, hn, half, 4);
    const tr2 = await throughput(off, RUNC, hn, LIFECYCLES - half, 4);
    const tw2 = await throughput(off, WASM, hw, LIFECYCLES - half, 4);
    const p2 = { wasmts: (tw1 + tw2) / 2, runc: (tr1 + tr2) / 2, ratio: (tw1 + tw2) / (tr1 + tr2) };

    say('P3: memory per container, 10 running at once on each side');
    const p3 = await memory(off, full('bench/probe-wasm:1'), full('bench/probe-native:1'), 10);
    const p3ratio = p3.perContainer.wasmtsPssMiB / p3.bareNodePssMiB;

    say("P6: the front end's start and delete vs node -e 0, 30 pairs each");
    const [daemon] = daemonTrees(off.address);
    if (!daemon) throw new Error('no shim daemon is running for the P6 measurement');
    const p6 = await measureFrontEnd(off.address, daemon, 30);

    say('timeline of one ctr run --rm, 7 runs each side');
    const tlWasm = await timeline(off, (id) => ['run', '--rm', '--runtime', WASM, hw, id], 7);
    const tlRunc = await timeline(off, (id) => ['run', '--rm', '--runtime', RUNC, hn, id], 7);

    say('P7: a component cold, warm and as a module, 5 rounds');
    const p7 = await componentStart(off, { rounds: 5, cacheDir: componentCache });

    // The daemons (one per containerd and environment) and their warm children stay by design;
    // anything else is a leak.
    const daemonPids = new Set(
      [...daemonTrees(off.address), ...daemonTrees(on.address)].flatMap((pid) => processTree(pid)),
    );
    const ours = new RegExp(`${escapeRegExp(DIST)}/(shim|wasm-child)\\.cjs`);
    const leftovers = listProcesses(ours).filter((p) => !daemonPids.has(p.pid));
    const rows: [string, string, string, string, boolean][] = [
      [
        'P1 ctr run --rm hello',
        `${p1.ours.median.toFixed(0)} ms vs runc ${p1.baseline.median.toFixed(0)} ms`,
        `${p1.ratio.toFixed(2)}x`,
        '<= 0.80x',
        p1.ratio <= 0.8,
      ],
      [
        'P2 throughput (60 lifecycles, 4 at a time)',
        `${p2.wasmts.toFixed(1)} vs runc ${p2.runc.toFixed(1)} tasks/s`,
        `${p2.ratio.toFixed(2)}x`,
        '>= 1.0x',
        p2.ratio >= 1,
      ],
      [
        'P3 PSS per container (10 at once) vs idle bare node',
        `${p3.perContainer.wasmtsPssMiB.toFixed(1)} MiB vs node ${p3.bareNodePssMiB.toFixed(1)} MiB (${p3.wasmts.processes} processes)`,
        `${p3ratio.toFixed(2)}x`,
        '<= 1.30x',
        p3ratio <= 1.3,
      ],
      [
        'P3 runc PSS per container (10 at once)',
        `${p3.perContainer.runcPssMiB.toFixed(1)} MiB (${p3.runc.processes} processes)`,
        '',
        'info',
        true,
      ],
      ['P3 all shim processes, 10 at once: VmHWM sum', `${p3.wasmts.vmHwmMiB.toFixed(1)} MiB`, '', 'info', true],
      [
        'P4 tracing on vs off',
        `${p4.ours.median.toFixed(0)} vs ${p4.baseline.median.toFixed(0)} ms`,
        `${p4.ratio.toFixed(2)}x`,
        '<= 1.05x',
        p4.ratio <= 1.05,
      ],
      [
        'P5 fib(35) computation',
        `${p5.compute.ours.median.toFixed(0)} ms vs native ${p5.compute.baseline.median.toFixed(0)} ms`,
        `${p5.compute.ratio.toFixed(2)}x`,
        '<= 1.5x',
        p5.compute.ratio <= 1.5,
      ],
      [
        'P5 fib(35) ctr run --rm end to end',
        `${p5.endToEnd.ours.median.toFixed(0)} ms vs runc ${p5.endToEnd.baseline.median.toFixed(0)} ms`,
        `${p5.endToEnd.ratio.toFixed(2)}x`,
        '<= 1.5x',
        p5.endToEnd.ratio <= 1.5,
      ],
      [
        'P6 front end start vs node -e 0',
        `${p6.start.ours.median.toFixed(1)} vs ${p6.start.baseline.median.toFixed(1)} ms (${p6.fallbacks} fell back to Node)`,
        `${p6.start.ratio.toFixed(2)}x`,
        '<= 0.20x',
        p6.start.ratio <= 0.2 && p6.fallbacks === 0,
      ],
      [
        'P6 front end delete vs node -e 0',
        `${p6.delete.ours.median.toFixed(1)} vs ${p6.delete.baseline.median.toFixed(1)} ms`,
        `${p6.delete.ratio.toFixed(2)}x`,
        '<= 0.20x',
        p6.delete.ratio <= 0.2,
      ],
      [
        'P7 component ctr run --rm: cold (transpile) / warm (cache hit) / module',
        `${p7.cold.median.toFixed(0)} / ${p7.warm.median.toFixed(0)} / ${p7.module.median.toFixed(0)} ms`,
        `${(p7.warm.median / p7.module.median).toFixed(2)}x warm/module`,
        'info',
        true,
      ],
    ];
    console.log(
      `\nwasmts benchmark — ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load ${os.loadavg()[0].toFixed(2)}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
    console.log('| figure | measured | ratio | target | met |');
    console.log('|---|---|---|---|---|');
    for (const [name, measured, ratio, target, met] of rows)
      console.log(`| ${name} | ${measured} | ${ratio} | ${target} | ${met ? 'yes' : 'no'} |`);
    console.log(`\nleftover shim/child processes (besides the daemons and their warm children): ${leftovers.length}`);
    printTimeline(tlWasm, tlRunc);
    const json = {
      machine: { cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, node: process.version, load: os.loadavg() },
      P1: p1,
      P2: p2,
      P3: p3,
      P4: p4,
      P5: p5,
      P6: p6,
      P7: p7,
      timeline: { wasmts: tlWasm, runc: tlRunc },
      medianP1WasmMs: median([p1.ours.median]),
      leftovers: leftovers.length,
    };
    fs.mkdirSync(path.join(REPO, 'build'), { recursive: true });
    fs.writeFileSync(path.join(REPO, 'build/bench.json'), JSON.stringify(json, null, 2));
    console.log(JSON.stringify(json));
  } finally {
    await off?.stop();
    await on?.stop();
    await rx.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    // Daemons leave once their containerd's socket is gone (checked every 2 s).
    const addresses = [off?.address, on?.address].filter(Boolean) as string[];
    const stuck = await settled(
      () => addresses.flatMap((a) => daemonTrees(a)),
      (d) => d.length === 0,
      8_000,
      200,
    );
    if (stuck.length)
      console.error(`bench: shim daemons still running after their containerd stopped: ${stuck.join(' ')}`);
  }
}

function printTimeline(wasm: TimelineRow[], runc: TimelineRow[]): void {
  console.log(
    "\none `ctr run --rm` hello, median ms from ctr's start (containerd's debug log and the shim's lines in it)\n",
  );
  console.log('| milestone | wasmts | runc |');
  console.log('|---|---|---|');
  for (const row of wasm) {
    const other = runc.find((r) => r.milestone === row.milestone);
    console.log(`| ${row.milestone} | ${row.ms.toFixed(0)} | ${other ? other.ms.toFixed(0) : ''} |`);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
