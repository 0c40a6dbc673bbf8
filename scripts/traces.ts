// `npx tsx scripts/traces.ts [options]`: the `wasmts traces` command (local
// OTLP receiver + trace viewer) until the wasmts binary wires it in.
import { tracesMain } from '../src/viewer/cli.js';

process.exitCode = await tracesMain(process.argv.slice(2));
