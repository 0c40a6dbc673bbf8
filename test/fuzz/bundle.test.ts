// Property-based fuzzing of the bundle parsing: config.json, process specs, the
// entrypoint lookup, start's stdin and the command line (a few seconds;
// scripts/fuzz.ts runs them longer). FUZZ_MS / FUZZ_SEED as in frame.test.ts.
import { test } from 'node:test';
import { bundleTargets, runFor } from './properties.js';

const MS = Number(process.env.FUZZ_MS) || 800;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;

for (const target of bundleTargets()) {
  test(target.name, { timeout: MS + 60_000 }, async () => {
    const { runs, seed } = await runFor(target, MS, SEED);
    process.stdout.write(`# ${runs} runs, seed ${seed}\n`);
  });
}
