// Pieces of the hostile suites built on the harness: a socket of the shared
// daemon driven by hand (like test/frontend/cli.test.ts), and tiny Wasm
// modules written byte by byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runShim, until, writeHandBundle, type Containerd } from '../harness/index.js';
import { TtrpcClient, createClient } from '../../src/ttrpc/client.js';
import type { ServiceClient } from '../../src/ttrpc/types.js';
import { Task } from '../../src/gen/containerd/task/v2/shim_pb.js';

// ---------------------------------------------------------------------------
// a socket of the shared daemon, started by hand as containerd would (see test/frontend/cli.test.ts)

export interface HandDaemon {
  readonly id: string;
  readonly bundle: string;
  readonly address: string;
  /** The daemon serving the socket. */
  readonly pid: number;
  readonly conn: TtrpcClient;
  readonly task: ServiceClient<(typeof Task)['method']>;
  /** Shutdown (after the caller deleted its containers), wait for the socket to close, run `delete`. */
  stop(): Promise<void>;
}

/**
 * `start` for a bundle of our own (a config.json whose process never runs: the
 * socket only needs a container id), then a ttrpc client on the socket.
 */
export async function startHandDaemon(c: Containerd, id: string): Promise<HandDaemon> {
  const bundle = writeHandBundle(c, id);
  const r = runShim(c, ['-id', id, 'start'], { cwd: bundle });
  if (r.code !== 0) throw new Error(`shim start failed (${r.code}): ${r.stderr}`);
  const address = r.stdout;
  const pid = Number(fs.readFileSync(path.join(bundle, 'shim.pid'), 'utf8'));
  const conn = await TtrpcClient.connect(address);
  const task = createClient(Task, conn);
  return {
    id,
    bundle,
    address,
    pid,
    conn,
    task,
    async stop() {
      try {
        await task.shutdown({ id });
      } catch {
        /* the connection may close under the call */
      }
      conn.close();
      const socketPath = address.replace(/^unix:\/\//, '');
      await until(`socket ${socketPath} to close`, () => !fs.existsSync(socketPath), 10_000);
      const d = runShim(c, ['-id', id, '-bundle', bundle, 'delete'], { cwd: bundle });
      if (d.code !== 0) throw new Error(`shim delete failed (${d.code}): ${d.stderr}`);
      fs.rmSync(bundle, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// tiny Wasm modules written byte by byte

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...u32(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...u32(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

export interface TinyModule {
  /** Function imports, all of type () -> (). */
  imports?: [module: string, field: string][];
  /** Export a memory of one page as "memory" (default true). */
  memory?: boolean;
  /** Name the one defined function () -> () is exported as (default "_start"); null: not exported. */
  exportAs?: string | null;
  /** Its body: 'return' (default), or 'trap' (unreachable). */
  body?: 'return' | 'trap';
}

/** A minimal valid module: one type () -> (), the given imports, one function, optionally a memory. */
export function tinyWasm(m: TinyModule = {}): Buffer {
  const imports = m.imports ?? [];
  const withMemory = m.memory ?? true;
  const exportAs = m.exportAs === undefined ? '_start' : m.exportAs;
  const exports: number[][] = [];
  if (withMemory) exports.push([...name('memory'), 0x02, 0x00]);
  if (exportAs !== null) exports.push([...name(exportAs), 0x00, ...u32(imports.length)]); // defined funcs follow the imported ones
  const code = m.body === 'trap' ? [0x00, 0x00, 0x0b] : [0x00, 0x0b]; // no locals; unreachable? end
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, 0x00, 0x00]])),
    ...(imports.length
      ? section(2, vec(imports.map(([mod, field]) => [...name(mod), ...name(field), 0x00, 0x00])))
      : []),
    ...section(3, vec([[0x00]])),
    ...(withMemory ? section(5, vec([[0x00, 0x01]])) : []),
    ...(exports.length ? section(7, vec(exports)) : []),
    ...section(10, vec([[...u32(code.length), ...code]])),
  ];
  return Buffer.from(bytes);
}
