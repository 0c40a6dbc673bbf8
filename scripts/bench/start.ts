// P6: the `start` subcommand, exec to printed address, against `node -e 0`,
// alternating the two so machine noise hits both. Prints a table and JSON.
//   npx tsx scripts/bench/start.ts [pairs]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ms, summarizePairs, type PairSummary } from './stats.js';

const SHIM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/containerd-shim-wasmts-v1');

// The cold path: no spare daemon to hand the container to, so start binds and spawns.
const ENV = { ...process.env, WASMTS_SPARE: '0' };

function timeRun(cmd: string, args: string[], cwd: string): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const elapsed = ms(process.hrtime.bigint() - t0);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { ms: elapsed, stdout: r.stdout.toString() };
}

export function measureStart(pairs: number): PairSummary {
  if (!fs.existsSync(path.join(path.dirname(SHIM), '../dist/shim.cjs'))) throw new Error('run `make build` first');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-bench-start-'));
  const ours: number[] = [];
  const node: number[] = [];
  try {
    for (let i = -2; i < pairs; i++) {
      const bundle = path.join(tmp, `b${i + 2}`);
      fs.mkdirSync(bundle);
      fs.writeFileSync(path.join(bundle, 'config.json'), '{"process":{"args":["/x.wasm"]}}');
      const a = timeRun(process.execPath, ['-e', '0'], bundle);
      const b = timeRun(SHIM, ['-namespace', 'bench', '-address', path.join(tmp, 'containerd.sock'), '-publish-binary', '/usr/bin/containerd', '-id', `start-${i + 2}`, 'start'], bundle);
      // Stop the daemon it left behind, and its socket.
      const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      fs.rmSync(b.stdout.replace('unix://', ''), { force: true });
      if (i >= 0) {
        node.push(a.ms);
        ours.push(b.ms);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return summarizePairs(ours, node);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const pairs = Number(process.argv[2] ?? 30);
  const s = measureStart(pairs);
  console.log(`P6 start vs node -e 0 (${s.pairs} pairs, 2 warm-up)`);
  console.log(`  start      median ${s.ours.median.toFixed(1)} ms  p90 ${s.ours.p90.toFixed(1)} ms`);
  console.log(`  node -e 0  median ${s.baseline.median.toFixed(1)} ms  p90 ${s.baseline.p90.toFixed(1)} ms`);
  console.log(`  ratio (median of per-pair ratios) ${s.ratio.toFixed(2)}x  target <= 1.30x`);
  console.log(JSON.stringify({ P6: s }));
}
