// Bundles each runtime entry into one minified CommonJS file under dist/, so a
// process loads one file instead of hundreds of modules (CommonJS loads faster
// than ESM on Node 20). Type checking is `tsc --noEmit` (make typecheck).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { URL } from 'node:url';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
let revision = 'unknown';
try {
  revision = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .trim();
} catch {
  // not a git checkout
}

const entries = {
  shim: 'src/cli/shim-main.ts',
  daemon: 'src/daemon/daemon.ts',
  'wasm-child': 'src/child/main.ts',
  'telemetry-worker': 'src/telemetry/worker.ts',
  wasmts: 'src/cli/wasmts.ts',
};

const entryPoints = Object.entries(entries)
  .filter(([, file]) => existsSync(file))
  .map(([out, file]) => ({ out, in: file }));

const common = {
  outdir: 'dist',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  define: {
    __WASMTS_VERSION__: JSON.stringify(pkg.version),
    __WASMTS_REVISION__: JSON.stringify(revision),
    'import.meta.url': 'undefined',
  },
};

const WORKER = 'telemetry-worker';
await build({ ...common, entryPoints: entryPoints.filter((e) => e.out !== WORKER) });
// The export worker thread lowers its own priority before the OpenTelemetry
// SDK is even evaluated, so loading and exporting only use CPU that
// containers, containerd and the shim's RPCs leave idle.
await build({
  ...common,
  entryPoints: entryPoints.filter((e) => e.out === WORKER),
  banner: { js: 'try{require("node:os").setPriority(19)}catch{}' },
});

// The build id the front end and the daemon share: a daemon serves only starts of
// its own build, so an upgrade never hands a container to old code.
const buildId = createHash('sha256');
for (const { out } of entryPoints) buildId.update(readFileSync(`dist/${out}.cjs`));
writeFileSync('dist/build-id', `${buildId.digest('hex').slice(0, 16)}\n`);
