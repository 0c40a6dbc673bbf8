// The transpiled-component cache: jco turns a component into JavaScript plus
// core modules once per component digest, and every later container of the
// same component loads that. Plain fs, no jco here: the transpiler is handed
// in, so the daemon or a child can use the cache (the child does, see
// component.ts) and the tests can count transpiles.
//
// Layout: <dir>/<sha256 of the component>/ holds the generated files and a
// manifest.json (written last) with each file's size and sha256. An entry is
// built in <dir>/.tmp-* and renamed into place, so a reader never sees half an
// entry; concurrent Creates of a new image wait for the first one's transpile
// (a lock file per digest) rather than each transpiling. Every load checks the
// files against the manifest; an entry that does not match (truncated, edited,
// a different transpiler) is moved aside and rebuilt. The directory's mtime records the
// last use; past maxBytes the least recently used entries go.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ComponentCacheOptions {
  dir: string;
  /** Upper bound of all entries together; the entry just added always stays. */
  maxBytes: number;
  /** Name@version of the transpiler: entries made by another are rebuilt. */
  transpiler: string;
}

export interface TranspileOutput {
  /** File name (no directories) → contents. */
  files: Record<string, Uint8Array>;
  /** Interfaces the component imports and exports, as jco names them. */
  imports: string[];
  exports: string[];
}

export type Transpile = (component: Uint8Array) => Promise<TranspileOutput>;

export interface CachedComponent extends TranspileOutput {
  digest: string;
  /** 'hit': loaded from the cache; 'miss': transpiled now. */
  cache: 'hit' | 'miss';
}

interface Manifest {
  format: 1;
  digest: string;
  transpiler: string;
  imports: string[];
  exports: string[];
  files: Record<string, { size: number; sha256: string }>;
}

const MANIFEST = 'manifest.json';
const FORMAT = 1;
/** A temp dir this old belongs to a transpile that died. */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** The longest a Create waits for another one's transpile of the same component. */
const LOCK_WAIT_MS = 120_000;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The component's transpiled form: from the cache when a valid entry exists, else transpiled and stored. */
export async function loadOrTranspile(
  component: Uint8Array,
  opts: ComponentCacheOptions,
  transpile: Transpile,
): Promise<CachedComponent> {
  const digest = sha256(component);
  const entry = path.join(opts.dir, digest);
  const cached = readEntry(entry, digest, opts.transpiler);
  if (cached) {
    touch(entry);
    return { ...cached, digest, cache: 'hit' };
  }
  const release = await transpileLock(opts.dir, digest, () => readEntry(entry, digest, opts.transpiler) !== undefined);
  try {
    // Another Create of the same component may have stored it while this one waited.
    const stored = readEntry(entry, digest, opts.transpiler);
    if (stored) return { ...stored, digest, cache: 'hit' };
    const output = await transpile(component);
    checkOutput(output);
    try {
      store(entry, digest, output, opts);
      evict(opts, digest);
    } catch {
      // A cache we cannot write (read-only, full disk) only costs the next container a transpile.
    }
    return { ...output, digest, cache: 'miss' };
  } finally {
    release();
  }
}

/**
 * One transpile per digest at a time: concurrent Creates of a new image wait
 * for the first (polling for its entry) instead of all transpiling at once.
 * The lock file holds its owner's pid; a dead owner's lock is taken over,
 * and nobody waits longer than LOCK_WAIT_MS. Without a writable cache there
 * is no lock and no wait.
 */
async function transpileLock(dir: string, digest: string, stored: () => boolean): Promise<() => void> {
  const lock = path.join(dir, `.lock-${digest}`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return () => undefined;
    }
    if (!lockOwnerAlive(lock) || Date.now() > deadline || stored()) return () => undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function lockOwnerAlive(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(lock, 'utf8'));
  } catch {
    return false; // released meanwhile
  }
  if (!Number.isInteger(pid) || pid <= 0) return removeLock(lock);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' || removeLock(lock);
  }
}

/** Removes a dead owner's lock; false, so the caller retries taking it. */
function removeLock(lock: string): false {
  fs.rmSync(lock, { force: true });
  return false;
}

/** A valid entry's contents, or undefined (moving an invalid entry out of the way). */
function readEntry(entry: string, digest: string, transpiler: string): TranspileOutput | undefined {
  let manifest: Manifest;
  try {
    manifest = parseManifest(fs.readFileSync(path.join(entry, MANIFEST), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') discard(entry);
    return undefined;
  }
  if (manifest.digest !== digest || manifest.transpiler !== transpiler) {
    discard(entry);
    return undefined;
  }
  const files: Record<string, Uint8Array> = {};
  for (const [name, want] of Object.entries(manifest.files)) {
    let data: Buffer;
    try {
      data = fs.readFileSync(path.join(entry, name));
    } catch {
      discard(entry);
      return undefined;
    }
    if (data.length !== want.size || sha256(data) !== want.sha256) {
      discard(entry);
      return undefined;
    }
    files[name] = data;
  }
  return { files, imports: manifest.imports, exports: manifest.exports };
}

function parseManifest(text: string): Manifest {
  const m = JSON.parse(text) as Partial<Manifest>;
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');
  if (
    m.format !== FORMAT ||
    typeof m.digest !== 'string' ||
    typeof m.transpiler !== 'string' ||
    !strings(m.imports) ||
    !strings(m.exports)
  ) {
    throw new Error('bad manifest');
  }
  if (typeof m.files !== 'object' || m.files === null || Object.keys(m.files).length === 0)
    throw new Error('bad manifest');
  for (const [name, f] of Object.entries(m.files)) {
    if (!SAFE_NAME.test(name) || name === MANIFEST || typeof f?.size !== 'number' || typeof f?.sha256 !== 'string')
      throw new Error('bad manifest');
  }
  return m as Manifest;
}

function checkOutput(output: TranspileOutput): void {
  const names = Object.keys(output.files);
  if (names.length === 0) throw new Error('the transpiler produced no files');
  for (const name of names) {
    if (!SAFE_NAME.test(name) || name === MANIFEST)
      throw new Error(`the transpiler produced an unexpected file name "${name}"`);
  }
}

function store(entry: string, digest: string, output: TranspileOutput, opts: ComponentCacheOptions): void {
  fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const tmp = fs.mkdtempSync(path.join(opts.dir, `.tmp-${digest.slice(0, 12)}-`));
  try {
    const manifest: Manifest = {
      format: FORMAT,
      digest,
      transpiler: opts.transpiler,
      imports: output.imports,
      exports: output.exports,
      files: {},
    };
    for (const [name, data] of Object.entries(output.files)) {
      fs.writeFileSync(path.join(tmp, name), data, { mode: 0o644 });
      manifest.files[name] = { size: data.length, sha256: sha256(data) };
    }
    fs.writeFileSync(path.join(tmp, MANIFEST), JSON.stringify(manifest));
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, entry);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another Create of the same component got there first: its entry is as good as ours.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
}

/** Moves a bad entry aside first (one rename), so no reader trips over it half-deleted. */
function discard(entry: string): void {
  const aside = path.join(path.dirname(entry), `.tmp-discard-${randomBytes(6).toString('hex')}`);
  try {
    fs.renameSync(entry, aside);
  } catch {
    return; // gone already, or replaced by someone else
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

function touch(entry: string): void {
  try {
    const now = new Date();
    fs.utimesSync(entry, now, now);
  } catch {
    // read-only cache: LRU order just stays as it was
  }
}

function entrySize(entry: string): number {
  let total = 0;
  for (const name of fs.readdirSync(entry)) total += fs.statSync(path.join(entry, name)).size;
  return total;
}

/** Drops least recently used entries until the cache fits maxBytes, keeping `keep`; clears dead temp dirs. */
export function evict(opts: ComponentCacheOptions, keep?: string): void {
  const entries: { name: string; size: number; used: number }[] = [];
  for (const name of fs.readdirSync(opts.dir)) {
    const full = path.join(opts.dir, name);
    try {
      const st = fs.statSync(full);
      if (name.startsWith('.tmp-') || name.startsWith('.lock-')) {
        if (Date.now() - st.mtimeMs > STALE_TEMP_MS) fs.rmSync(full, { recursive: true, force: true });
        continue;
      }
      if (!st.isDirectory()) continue;
      entries.push({ name, size: entrySize(full), used: st.mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  let total = entries.reduce((sum, e) => sum + e.size, 0);
  entries.sort((a, b) => a.used - b.used);
  for (const e of entries) {
    if (total <= opts.maxBytes) break;
    if (e.name === keep) continue;
    discard(path.join(opts.dir, e.name));
    total -= e.size;
  }
}

export const DEFAULT_CACHE_DIR = '/var/lib/wasmts/components';
const DEFAULT_CACHE_MAX_MB = 512;

/** The daemon's choice of cache: WASMTS_COMPONENT_CACHE (a directory) and WASMTS_COMPONENT_CACHE_MAX_MB from its environment. */
export function componentCacheConfig(env: NodeJS.ProcessEnv): { dir: string; maxBytes: number } {
  const dir =
    env.WASMTS_COMPONENT_CACHE && path.isAbsolute(env.WASMTS_COMPONENT_CACHE)
      ? env.WASMTS_COMPONENT_CACHE
      : DEFAULT_CACHE_DIR;
  const mb = Number(env.WASMTS_COMPONENT_CACHE_MAX_MB);
  return { dir, maxBytes: (Number.isFinite(mb) && mb > 0 ? mb : DEFAULT_CACHE_MAX_MB) * 1024 * 1024 };
}
