// Build an OCI image tar around a Wasm module: npx tsx scripts/wasm-image.ts --help
import { imageMain } from '../src/cli/image.js';

process.exitCode = await imageMain(process.argv.slice(2));
