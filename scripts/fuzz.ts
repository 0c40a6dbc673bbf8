// Runs the fuzz properties of test/fuzz/properties.ts for longer than the
// test suite does: the ttrpc FrameDecoder and the bundle parsing.
//
//   node --import tsx scripts/fuzz.ts [--seconds N] [--seed S] [--only TEXT]
//
// --seconds  time per property (default 30)
// --seed     replay a seed a failure printed (default: a fresh one per property)
// --only     run the properties whose name contains TEXT
// Exits 1 on the first failing property, printing fast-check's report (seed,
// path and the shrunk counterexample) so it can be replayed.
import { bundleTargets, frameTargets, runFor } from '../test/fuzz/properties.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('usage: node --import tsx scripts/fuzz.ts [--seconds N] [--seed S] [--only TEXT]\n');
    return 0;
  }
  const seconds = Number(arg('seconds') ?? 30);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  const seedArg = arg('seed');
  const seed = seedArg === undefined ? undefined : Number(seedArg);
  const only = arg('only');
  const targets = [...frameTargets, ...bundleTargets()].filter((t) => !only || t.name.includes(only));
  if (targets.length === 0) throw new Error(`no property matches ${JSON.stringify(only)}`);
  process.stdout.write(`fuzz: ${targets.length} properties, ${seconds} s each\n`);
  let total = 0;
  const t0 = Date.now();
  for (const t of targets) {
    try {
      const r = await runFor(t, seconds * 1000, seed);
      total += r.runs;
      process.stdout.write(`  ok    ${String(r.runs).padStart(9)} runs  seed ${r.seed}  ${t.name}\n`);
    } catch (err) {
      process.stdout.write(`  FAIL  ${t.name}\n${(err as Error).message}\n`);
      return 1;
    }
  }
  process.stdout.write(`fuzz: ${total} runs in ${((Date.now() - t0) / 1000).toFixed(1)} s, no failure\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(2);
  },
);
