// Embeds a WIT world's component-type section into a core module, so that
// `jco new` can make a component with imports of that world (used by
// scripts/build-modules.sh). Through jco's API: the `jco embed` command of
// jco 1.35 cannot read its --wit file (its wasm-tools runs without preopens).
// Usage: node scripts/embed-wit.mjs IN.wasm WIT-FILE WORLD OUT.wasm
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { componentEmbed } from '@bytecodealliance/jco';

const [input, wit, world, output] = process.argv.slice(2);
if (!output) {
  process.stderr.write('usage: node scripts/embed-wit.mjs IN.wasm WIT-FILE WORLD OUT.wasm\n');
  process.exit(2);
}
const embedded = await componentEmbed({ binary: readFileSync(input), witSource: readFileSync(wit, 'utf8'), world });
writeFileSync(output, embedded);
