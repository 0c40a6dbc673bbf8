// What the end-to-end suites need built: the C test modules, and the shim
// bundle in dist/.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DIST, REPO } from './constants.js';
import { sleep } from './wait.js';

const LOCK_STALE_MS = 120_000;

/** Runs fn holding build/.<name>.lock, so parallel test files build a step once. */
export async function withLock<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const dir = path.join(REPO, 'build');
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, `.${name}.lock`);
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // a lock older than that belongs to a dead run
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > LOCK_STALE_MS) fs.rmdirSync(lock);
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lock}`, { cause: err });
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmdirSync(lock);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (ent.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

const BUNDLES = ['shim.cjs', 'daemon.cjs', 'wasm-child.cjs', 'telemetry-worker.cjs'];

/**
 * Builds the test modules, and the shim bundles when dist/ lacks one. A bundle
 * older than src/ is only warned about (`make build` rebuilds it; rebuilding
 * here could pick up half-edited sources or swap dist/ under running shims).
 */
export async function ensureBuilt(): Promise<void> {
  await withLock('e2e-build', () => {
    execFileSync('bash', [path.join(REPO, 'scripts', 'build-modules.sh')], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (BUNDLES.some((f) => !fs.existsSync(path.join(DIST, f)))) {
      const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build.mjs')], { cwd: REPO, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`node scripts/build.mjs failed:\n${r.stderr}`);
    } else if (newestMtime(path.join(REPO, 'src')) > fs.statSync(path.join(DIST, 'shim.cjs')).mtimeMs) {
      process.stderr.write('e2e: warning: dist/ is older than src/; run `make build` to test the current sources\n');
    }
  });
}
