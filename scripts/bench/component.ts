// Start of a WASI 0.2 component against the same program as a preview 1
// module, end to end through `ctr run --rm`: the component cold (its
// transpile-cache entry removed first, so the Create transpiles), warm (a
// cache hit), and the module, alternated round by round so machine noise hits
// all three. The program is hello.c (build/modules/hello.wasm and
// hello.component.wasm, `make modules`).
//
//   componentStart(ctd, { rounds, cacheDir })  for `make bench` (its containerd
//       must have been started with WASMTS_COMPONENT_CACHE=cacheDir)
//   node --import tsx scripts/bench/component.ts [rounds]   standalone: own containerd
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packImage } from '../../src/image/oci.js';
import { sha256 } from '../../src/child/component-cache.js';
import {
  isolatedOtelEnv,
  startContainerd,
  type Containerd,
  BIN_DIR,
  MODULES,
  PLATFORM,
  RUNTIME,
} from '../../test/harness/index.js';
import { median, percentile } from './stats.js';

const IMAGE = 'docker.io/wasmts-bench/component-hello:v1';

export interface Series {
  median: number;
  p90: number;
  runs: number[];
}

export interface ComponentStartResult {
  /** ms of `ctr run --rm` of the component, its cache entry removed first. */
  cold: Series;
  /** The same with the entry in place. */
  warm: Series;
  /** The preview 1 module of the same program. */
  module: Series;
}

let seq = 0;

async function timedRun(ctd: Containerd, entry: string, want: string): Promise<number> {
  const id = `cbench-${process.pid}-${seq++}`;
  const t0 = process.hrtime.bigint();
  const r = await ctd.ctr(['run', '--rm', '--runtime', RUNTIME, '--platform', PLATFORM, IMAGE, id, entry], {
    timeoutMs: 120_000,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0 || r.stdout !== want) throw new Error(`${entry} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return ms;
}

const series = (runs: number[]): Series => ({ median: median(runs), p90: percentile(runs, 90), runs });

/** Imports the hello image into ctd and runs `rounds` alternated rounds (after one unmeasured warm-up round). */
export async function componentStart(
  ctd: Containerd,
  opts: { rounds: number; cacheDir: string },
): Promise<ComponentStartResult> {
  const tar = path.join(ctd.tmp, 'component-bench.tar');
  const component = path.join(MODULES, 'hello.component.wasm');
  await packImage({
    module: component,
    moduleDest: '/hello.component.wasm',
    files: [{ src: path.join(MODULES, 'hello.wasm'), dest: 'hello.wasm' }],
    ref: IMAGE,
    output: tar,
  });
  await ctd.importImage(tar, { timeoutMs: 60_000 });
  const entry = path.join(opts.cacheDir, sha256(fs.readFileSync(component)));
  const want = 'hello from wasm\n';
  const cold = () => {
    fs.rmSync(entry, { recursive: true, force: true });
    return timedRun(ctd, '/hello.component.wasm', want);
  };
  const warm = () => timedRun(ctd, '/hello.component.wasm', want);
  const mod = () => timedRun(ctd, '/hello.wasm', want);
  const runs: Record<'cold' | 'warm' | 'module', number[]> = { cold: [], warm: [], module: [] };
  const order: [keyof typeof runs, () => Promise<number>][] = [
    ['cold', cold],
    ['warm', warm],
    ['module', mod],
  ];
  for (let round = -1; round < opts.rounds; round++) {
    // The order rotates each round; warm always finds the entry the last cold run left.
    const k = Math.max(round, 0) % 3;
    const rotated = [...order.slice(k), ...order.slice(0, k)];
    for (const [name, fn] of rotated) {
      const ms = await fn();
      if (round >= 0) runs[name].push(ms);
    }
  }
  return { cold: series(runs.cold), warm: series(runs.warm), module: series(runs.module) };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const shimDir = BIN_DIR;
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-cbench-cache-'));
  const ctd = await startContainerd({
    name: 'cbench',
    shimDir,
    env: isolatedOtelEnv({ WASMTS_COMPONENT_CACHE: cacheDir }),
  });
  try {
    const r = await componentStart(ctd, { rounds, cacheDir });
    const row = (name: string, s: Series) =>
      `${name.padEnd(34)} ${s.median.toFixed(0).padStart(7)} ${s.p90.toFixed(0).padStart(7)}   ${s.runs.map((x) => x.toFixed(0)).join(' ')}`;
    process.stdout.write(`ctr run --rm, ms (${rounds} rounds, alternated)   median     p90   runs\n`);
    process.stdout.write(
      `${row('component, cold (transpile)', r.cold)}\n${row('component, warm (cache hit)', r.warm)}\n${row('preview 1 module, same program', r.module)}\n`,
    );
    const delta = (a: Series, b: Series) => median(a.runs.map((x, i) => x - b.runs[i])).toFixed(0);
    process.stdout.write(
      `per round, median: warm - module ${delta(r.warm, r.module)} ms, cold - warm ${delta(r.cold, r.warm)} ms\n`,
    );
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    await ctd.stop();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`component bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
