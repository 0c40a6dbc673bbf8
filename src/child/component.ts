// Runs a WASI 0.2 `wasi:cli/command` component in the Wasm child: transpiled
// by jco (through the cache in component-cache.ts), its WASI imports served
// by @bytecodealliance/preview2-shim. Both packages are loaded from
// node_modules at run time, and only here, so a core module's Create never
// pays for them (the shim also starts an I/O worker thread when loaded).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { ActiveSpan } from '../telemetry/recorder.js';
import {
  ATTR_WASM_MODULE_SHA256,
  ATTR_WASM_MODULE_SIZE,
  ATTR_WASMTS_COMPONENT_CACHE,
  ATTR_WASMTS_WASM_KIND,
} from '../telemetry/semconv.js';
import { loadOrTranspile, type ComponentCacheOptions, type TranspileOutput } from './component-cache.js';
import type { ChildJob } from './protocol.js';

export interface ComponentSetup {
  job: ChildJob;
  bytes: Uint8Array;
  /** The module's environment (spec env, plus TRACECONTEXT when tracing). */
  env: Record<string, string>;
  stdoutFd: number;
  stderrFd: number;
  startSpan(name: string): ActiveSpan | undefined;
}

export interface PreparedComponent {
  /** Runs wasi:cli/run; returns the exit status, throws a WebAssembly.RuntimeError on a trap. */
  run(): number;
}

const TRANSPILER = '@bytecodealliance/jco-transpile';
const PREVIEW2_SHIM = '@bytecodealliance/preview2-shim/instantiation';
/** The generated ES module, named .mjs so Node loads it as one wherever the cache lives. */
const MAIN = 'component.mjs';
const RUN_EXPORT = /^wasi:cli\/run@0\.2\.\d+$/;

/** How `wasi:cli/exit` unwinds the component: thrown through its frames, caught by run(). */
class ComponentExit extends Error {
  constructor(readonly status: number) {
    super(`wasi:cli/exit with status ${status}`);
  }
}

// The bundle has no import.meta.url (esbuild defines it away) but has __filename; tsx has the reverse.
const requireHere = createRequire(import.meta.url ?? pathToFileURL(__filename).href);

/** Loads an ES module from node_modules; the specifier is resolved here so the bundler leaves it alone. */
async function importPackage(specifier: string): Promise<unknown> {
  return import(pathToFileURL(requireHere.resolve(specifier)).href);
}

function packageVersion(name: string): string {
  let dir = path.dirname(requireHere.resolve(name));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === name && typeof pkg.version === 'string') return `${name}@${pkg.version}`;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the version of ${name}`);
    dir = up;
  }
}

/** The part of jco-transpile's API used here (its result is checked below). */
type TranspileBytes = (bytes: Uint8Array, options: Record<string, unknown>) => Promise<unknown>;
/** The transpiled component's entry (instantiation: 'async'); its result is checked where it is called. */
type Instantiate = (
  getCoreModule: (file: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
) => Promise<unknown>;

async function transpile(bytes: Uint8Array): Promise<TranspileOutput> {
  const jco = (await importPackage(TRANSPILER)) as { transpileBytes?: unknown };
  if (typeof jco.transpileBytes !== 'function') throw new Error(`${TRANSPILER} has no transpileBytes`);
  const transpileBytes = jco.transpileBytes as TranspileBytes;
  const out = (await transpileBytes(bytes, {
    name: 'component',
    // The caller supplies every import at instantiation: nothing is imported by package name from the cache.
    instantiation: 'async',
    emitTypescriptDeclarations: false,
    // Paid once per component; every container then parses about half the JavaScript.
    minify: true,
  })) as { files?: unknown; imports?: unknown; exports?: unknown };
  if (
    typeof out.files !== 'object' ||
    out.files === null ||
    !Array.isArray(out.imports) ||
    !Array.isArray(out.exports)
  ) {
    throw new Error(`${TRANSPILER} returned an unexpected result`);
  }
  const files: Record<string, Uint8Array> = {};
  for (const [name, data] of Object.entries(out.files as Record<string, unknown>)) {
    if (!(data instanceof Uint8Array)) throw new Error(`${TRANSPILER} returned a non-binary file ${name}`);
    files[name === 'component.js' ? MAIN : name] = data;
  }
  // jco lists exports as [name, kind] pairs.
  const exports = out.exports.map((e) => (Array.isArray(e) ? String(e[0]) : String(e)));
  return { files, imports: out.imports.map(String), exports };
}

/** A synchronous writer on fd, standing in for process.stdout/stderr, which the shim writes the component's stdio to. */
function fdWriter(fd: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        for (let off = 0; off < chunk.length;) off += fs.writeSync(fd, chunk, off);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

function redirectStdio(stdoutFd: number, stderrFd: number): void {
  const stdout = fdWriter(stdoutFd);
  const stderr = fdWriter(stderrFd);
  stdout.on('error', () => undefined);
  stderr.on('error', () => undefined);
  // Before the shim is first imported: it binds node:process's stdout/stderr then, for good.
  Object.defineProperty(process, 'stdout', { configurable: true, enumerable: true, get: () => stdout });
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stderr });
}

interface Shim {
  getImportObject(): Record<string, unknown>;
}

async function wasiImports(
  shimModule: Promise<unknown>,
  job: ChildJob,
  env: Record<string, string>,
): Promise<Record<string, unknown>> {
  const mod = (await shimModule) as { WASIShim?: new (config: unknown) => Shim };
  if (typeof mod.WASIShim !== 'function') throw new Error('@bytecodealliance/preview2-shim has no WASIShim');
  const root = job.preopens['/'];
  const shim = new mod.WASIShim({
    sandbox: {
      // The shim resolves every path (symlinks included) inside the preopen and refuses what leaves it.
      preopens: root ? { '/': root } : {},
      env,
      args: job.args,
      // Like a preview 1 module: no sockets (the child runs in the host's network namespace).
      enableNetwork: false,
    },
  });
  const imports = shim.getImportObject();
  warmIoWorker(imports);
  imports['wasi:cli/exit'] = {
    exit(status: { tag?: string }) {
      throw new ComponentExit(status?.tag === 'err' ? 1 : 0);
    },
    exitWithCode(code: number) {
      throw new ComponentExit(code & 0xff);
    },
  };
  return imports;
}

/**
 * The shim does its I/O in a worker thread, started when it is loaded; the
 * first call waits for that thread to boot. One call now (a timer of 0 ns)
 * moves that wait from the component's run into Create.
 */
function warmIoWorker(imports: Record<string, unknown>): void {
  const clock = imports['wasi:clocks/monotonic-clock'] as
    { subscribeDuration?: (ns: bigint) => { block?: () => void } } | undefined;
  clock?.subscribeDuration?.(0n).block?.();
}

function cacheOptions(job: ChildJob): ComponentCacheOptions {
  return { dir: job.componentCache.dir, maxBytes: job.componentCache.maxBytes, transpiler: packageVersion(TRANSPILER) };
}

export async function prepareComponent(s: ComponentSetup): Promise<PreparedComponent> {
  const name = s.job.args[0] ?? s.job.modulePath;
  if (s.job.exportName !== '_start') {
    throw new Error(
      `${name} is a component: it runs its wasi:cli/run export, "#${s.job.exportName}" only selects exports of core modules`,
    );
  }
  // First of all: jco's transpiler loads the shim too.
  redirectStdio(s.stdoutFd, s.stderrFd);
  // Loading the shim (and booting its I/O thread) overlaps with the cache read and the compiles below.
  const shimModule = importPackage(PREVIEW2_SHIM);
  shimModule.catch(() => undefined); // awaited (and reported) at instantiation
  const compileSpan = s.startSpan('wasm.compile');
  compileSpan?.setAttribute(ATTR_WASMTS_WASM_KIND, 'component');
  let transpiled: Awaited<ReturnType<typeof loadOrTranspile>>;
  const cores = new Map<string, WebAssembly.Module>();
  try {
    transpiled = await loadOrTranspile(s.bytes, cacheOptions(s.job), transpile);
    compileSpan?.setAttributes({
      [ATTR_WASMTS_COMPONENT_CACHE]: transpiled.cache,
      [ATTR_WASM_MODULE_SIZE]: s.bytes.length,
      [ATTR_WASM_MODULE_SHA256]: transpiled.digest,
    });
    for (const [file, data] of Object.entries(transpiled.files)) {
      if (file.endsWith('.wasm')) cores.set(file, await WebAssembly.compile(data));
    }
  } catch (err) {
    compileSpan?.recordException(err).end();
    throw new Error(`${name} is a component that cannot be transpiled: ${(err as Error).message}`, { cause: err });
  }
  compileSpan?.end();

  if (!transpiled.exports.some((e) => RUN_EXPORT.test(e))) {
    throw new Error(
      `${name} is a component but not a wasi:cli command: it does not export wasi:cli/run@0.2 (exports: ${transpiled.exports.join(', ') || 'none'})`,
    );
  }
  const instantiateSpan = s.startSpan('wasm.instantiate');
  instantiateSpan?.setAttribute(ATTR_WASMTS_WASM_KIND, 'component');
  let runExport: () => unknown;
  try {
    const imports = await wasiImports(shimModule, s.job, s.env);
    const missing = transpiled.imports.filter((i) => imports[i] === undefined);
    if (missing.length) {
      throw new Error(
        `it imports ${missing.join(', ')}, which wasmts cannot provide (it provides ${Object.keys(imports)
          .filter((k) => imports[k] !== undefined)
          .sort()
          .join(', ')})`,
      );
    }
    const main = transpiled.files[MAIN];
    if (!main) throw new Error(`the transpiled component has no ${MAIN}`);
    // From memory, not the cache file: what runs is exactly what the manifest vouched for.
    const js = (await import(`data:text/javascript;base64,${Buffer.from(main).toString('base64')}`)) as {
      instantiate?: unknown;
    };
    if (typeof js.instantiate !== 'function') throw new Error('the transpiled component has no instantiate()');
    const getCoreModule = (file: string) => {
      const m = cores.get(file);
      if (!m) throw new Error(`the transpiled component has no core module ${file}`);
      return m;
    };
    const instantiate = js.instantiate as Instantiate;
    const instance = await instantiate(getCoreModule, imports);
    if (typeof instance !== 'object' || instance === null) throw new Error('the transpiled component has no exports');
    const runIface = Object.entries(instance).find(([k]) => RUN_EXPORT.test(k))?.[1] as { run?: unknown } | undefined;
    if (typeof runIface?.run !== 'function') throw new Error('its wasi:cli/run export has no run function');
    runExport = runIface.run as () => unknown;
  } catch (err) {
    instantiateSpan?.recordException(err).end();
    throw new Error(`${name} cannot be instantiated: ${(err as Error).message}`, { cause: err });
  }
  instantiateSpan?.end();
  return {
    run() {
      try {
        runExport();
        return 0;
      } catch (err) {
        if (err instanceof ComponentExit) return err.status;
        if (err instanceof WebAssembly.RuntimeError || err instanceof Error) throw err;
        return 1; // run returned err(_): jco throws the (empty) error payload
      }
    },
  };
}
