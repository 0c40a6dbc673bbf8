// Property-based fuzzing of the ttrpc FrameDecoder (a few seconds; scripts/fuzz.ts runs it longer).
// FUZZ_MS sets the time per property, FUZZ_SEED a seed to replay.
import { test } from 'node:test';
import { frameTargets, runFor } from './properties.js';

const MS = Number(process.env.FUZZ_MS) || 1_200;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;

for (const target of frameTargets) {
  test(target.name, { timeout: MS + 60_000 }, async () => {
    const { runs, seed } = await runFor(target, MS, SEED);
    process.stdout.write(`# ${runs} runs, seed ${seed}\n`);
  });
}
