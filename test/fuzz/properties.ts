// fast-check properties for the parsers that take bytes from outside the
// shim: the ttrpc FrameDecoder (any peer on the socket), and the bundle
// parsing (config.json, process specs, the entrypoint lookup, start's stdin,
// the command line). Shared by test/fuzz/*.test.ts (a few seconds each) and
// scripts/fuzz.ts (as long as you like).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, HEADER_LENGTH, MAX_PAYLOAD, type DecodeEvent } from '../../src/ttrpc/frame.js';
import { checkProcess, readAnnotations, readSpec, SpecError } from '../../src/bundle/spec.js';
import { resolveEntrypoint } from '../../src/daemon/container/entrypoint.js';
import { parseStartInput, startReply } from '../../src/frontend/bootstrap.js';
import { FlagError, parseShimFlags } from '../../src/cli/shim-flags.js';

export interface FuzzTarget {
  name: string;
  /** Builds the property (called once per run; may set up fixtures, see teardown). */
  property(): fc.IRawProperty<unknown>;
  teardown?(): void;
}

// ---------------------------------------------------------------------------
// ttrpc frames

/** Cuts bytes at the given (sorted, deduplicated) offsets. */
function cut(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function summary(evs: DecodeEvent[]): string[] {
  return evs.map(
    (e) =>
      `${e.kind}:${e.header.length}:${e.header.streamId}:${e.header.type}:${e.header.flags}:${e.kind === 'frame' ? Buffer.from(e.payload).toString('hex') : ''}`,
  );
}

/** The decoder's staging buffer, which must never exceed MAX_PAYLOAD. */
function staged(d: FrameDecoder): number {
  return (d as unknown as { payload?: Uint8Array }).payload?.length ?? 0;
}

const frameArb = fc.record({
  streamId: fc.nat({ max: 0xffffffff }),
  type: fc.nat({ max: 255 }),
  flags: fc.nat({ max: 255 }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

/** A byte stream: valid frames, raw headers with any length (oversized included), and junk. */
const pieceArb = fc.oneof(
  {
    weight: 5,
    arbitrary: frameArb.map((f) => ({ bytes: encodeFrame(f.streamId, f.type, f.payload, f.flags), oversized: 0 })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ extra: fc.integer({ min: 1, max: 2048 }), streamId: fc.nat({ max: 0xffffffff }) })
      .map(({ extra, streamId }) => {
        // an oversized frame followed by its whole payload, which the decoder must skip
        const h = Buffer.alloc(HEADER_LENGTH);
        h.writeUInt32BE(MAX_PAYLOAD + extra, 0);
        h.writeUInt32BE(streamId, 4);
        h[8] = 1;
        return { bytes: Buffer.concat([h, Buffer.alloc(MAX_PAYLOAD + extra, 0x5a)]), oversized: 1 };
      }),
  },
);

export const frameTargets: FuzzTarget[] = [
  {
    name: 'FrameDecoder never throws, whatever the bytes and however they are chunked',
    property: () =>
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.array(fc.nat(), { maxLength: 40 }), (bytes, cuts) => {
        const d = new FrameDecoder();
        for (const c of cut(bytes, cuts)) {
          d.feed(c);
          if (staged(d) > MAX_PAYLOAD) throw new Error(`staged ${staged(d)} bytes`);
        }
        const e = d.end();
        if (e !== undefined && e.kind !== 'truncated') throw new Error(`end() gave ${JSON.stringify(e)}`);
        if (!d.idle) throw new Error('not idle after end()');
      }),
  },
  {
    name: 'FrameDecoder is chunking-invariant (events and end-of-stream verdict)',
    property: () =>
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(frameArb, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (junk, frames, cuts) => {
          const bytes = Buffer.concat([
            ...frames.map((f) => encodeFrame(f.streamId, f.type, f.payload, f.flags)),
            junk,
          ]);
          const whole = new FrameDecoder();
          const a = summary(whole.feed(bytes));
          const endA = whole.end();
          const split = new FrameDecoder();
          const b = summary(cut(bytes, cuts).flatMap((c) => split.feed(c)));
          const endB = split.end();
          if (JSON.stringify(a) !== JSON.stringify(b))
            throw new Error(`chunked decode differs:\n${a.join('\n')}\nvs\n${b.join('\n')}`);
          if (JSON.stringify(endA) !== JSON.stringify(endB))
            throw new Error(`end() differs: ${JSON.stringify(endA)} vs ${JSON.stringify(endB)}`);
        },
      ),
  },
  {
    name: 'FrameDecoder round-trips valid frames; an oversized one is reported at its header and skipped',
    property: () =>
      fc.property(
        fc.array(pieceArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (pieces, cuts) => {
          const bytes = Buffer.concat(pieces.map((p) => p.bytes));
          const d = new FrameDecoder();
          const evs: DecodeEvent[] = [];
          for (const c of cut(bytes, cuts)) {
            evs.push(...d.feed(c));
            if (staged(d) > MAX_PAYLOAD) throw new Error(`staged ${staged(d)} bytes`);
          }
          if (evs.length !== pieces.length) throw new Error(`${evs.length} events for ${pieces.length} frames`);
          pieces.forEach((p, i) => {
            const ev = evs[i];
            if (p.oversized) {
              if (ev.kind !== 'oversized' || ev.header.length <= MAX_PAYLOAD)
                throw new Error(`piece ${i}: want oversized, got ${ev.kind}`);
            } else if (
              ev.kind !== 'frame' ||
              !Buffer.from(encodeFrame(ev.header.streamId, ev.header.type, ev.payload, ev.header.flags)).equals(
                Buffer.from(p.bytes),
              )
            ) {
              throw new Error(`piece ${i}: frame did not round-trip`);
            }
          });
          if (!d.idle || d.end() !== undefined)
            throw new Error('stream ended between frames but the decoder disagrees');
        },
      ),
  },
  {
    name: 'FrameDecoder reports a stream cut inside a frame as truncated, with the stream id once the header is complete',
    property: () =>
      fc.property(
        frameArb.filter((f) => f.payload.length > 0),
        fc.nat(),
        (f, at) => {
          const bytes = encodeFrame(f.streamId, f.type, f.payload, f.flags);
          const n = 1 + (at % (bytes.length - 1)); // 1 .. length-1: inside the frame
          const d = new FrameDecoder();
          if (d.feed(bytes.subarray(0, n)).length !== 0) throw new Error('a partial frame produced an event');
          const e = d.end();
          if (e?.kind !== 'truncated') throw new Error(`cut at ${n}: ${JSON.stringify(e)}`);
          if (n >= HEADER_LENGTH && e.streamId !== f.streamId)
            throw new Error(`cut at ${n}: stream ${e.streamId}, want ${f.streamId}`);
          if (n < HEADER_LENGTH && e.streamId !== undefined)
            throw new Error(`cut in the header at ${n} named stream ${e.streamId}`);
        },
      ),
  },
];

// ---------------------------------------------------------------------------
// bundles: config.json, process specs, entrypoints, start's input, flags

function only<T>(what: string, fn: () => T, allowed: (err: unknown) => boolean): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (allowed(err)) return undefined;
    throw new Error(`${what} threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
}
const isSpecError = (e: unknown) => e instanceof SpecError;

/** JSON values biased towards the shapes config.json and process specs have. */
const specLike = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 3 }),
    tie('process'),
    fc.record(
      {
        process: tie('process'),
        root: fc.oneof(fc.record({ path: fc.string() }), fc.jsonValue()),
        annotations: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.jsonValue()),
      },
      { requiredKeys: [] },
    ),
  ),
  process: fc.record(
    {
      args: fc.oneof(fc.array(fc.string(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      env: fc.oneof(fc.array(fc.string(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      cwd: fc.oneof(fc.constantFrom('/', '/app', 'rel', ''), fc.jsonValue({ maxDepth: 1 })),
      user: fc.oneof(
        fc.record(
          {
            uid: fc.oneof(fc.integer({ min: -2, max: 2 ** 32 + 1 }), fc.double(), fc.string()),
            gid: fc.oneof(fc.nat(), fc.string()),
            additionalGids: fc.oneof(fc.array(fc.nat()), fc.jsonValue()),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      terminal: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  ),
}));

export function bundleTargets(): FuzzTarget[] {
  let tmp: string | undefined;
  const dir = () => (tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'wasmts-fuzz-')));
  /** A rootfs with a module, a directory, a non-module, and links leading in and out. */
  let rootfs: string | undefined;
  const root = () => {
    if (rootfs) return rootfs;
    rootfs = path.join(dir(), 'rootfs');
    fs.mkdirSync(path.join(rootfs, 'app', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(rootfs, 'bin'));
    fs.writeFileSync(path.join(rootfs, 'm.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    fs.writeFileSync(path.join(rootfs, 'app', 'text.wasm'), 'not wasm');
    fs.symlinkSync('/m.wasm', path.join(rootfs, 'bin', 'abs-link.wasm'));
    fs.symlinkSync('../../../../../../m.wasm', path.join(rootfs, 'app', 'rel-link.wasm'));
    fs.symlinkSync('/etc', path.join(rootfs, 'etc-out'));
    fs.symlinkSync('../../../../../../../etc/passwd', path.join(rootfs, 'app', 'passwd-out'));
    fs.symlinkSync('loop-b', path.join(rootfs, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(rootfs, 'loop-b'));
    return rootfs;
  };
  const segment = fc.constantFrom(
    '',
    '.',
    '..',
    'm.wasm',
    'app',
    'sub',
    'bin',
    'abs-link.wasm',
    'rel-link.wasm',
    'text.wasm',
    'etc-out',
    'passwd',
    'passwd-out',
    'loop-a',
    'nope',
    '#',
    '#_start',
    'm.wasm#run',
    '\u0000',
    'é',
  );
  const guestPath = fc
    .tuple(fc.boolean(), fc.array(segment, { maxLength: 7 }))
    .map(([abs, parts]) => (abs ? '/' : '') + parts.join('/'));

  return [
    {
      name: 'readSpec: any bytes in config.json give an object or a SpecError',
      property: () =>
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 512 }),
            specLike.value.map((v) => Buffer.from(JSON.stringify(v) ?? 'undefined')),
          ),
          (bytes) => {
            const b = path.join(dir(), 'bundle');
            fs.mkdirSync(b, { recursive: true });
            fs.writeFileSync(path.join(b, 'config.json'), bytes);
            const spec = only('readSpec', () => readSpec(b), isSpecError);
            if (spec !== undefined && (typeof spec !== 'object' || spec === null || Array.isArray(spec)))
              throw new Error(`readSpec returned ${JSON.stringify(spec)}`);
            only(
              'readAnnotations',
              () => readAnnotations(b),
              () => false,
            );
            // what Create does next with it
            if (spec !== undefined) only('checkProcess', () => checkProcess(spec.process, 'config.json'), isSpecError);
          },
        ),
    },
    {
      name: 'checkProcess: any JSON value is accepted only when well-formed, otherwise a SpecError',
      property: () =>
        fc.property(
          specLike.process.chain((p) => fc.oneof(fc.constant(p as unknown), fc.jsonValue())),
          (p) => {
            const ok = only('checkProcess', () => checkProcess(p, 'spec'), isSpecError);
            if (ok === undefined) return;
            const q = ok as unknown as Record<string, unknown>;
            const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
            if (!strings(q.args) || q.args.length === 0) throw new Error(`accepted args ${JSON.stringify(q.args)}`);
            if (q.env !== undefined && !strings(q.env)) throw new Error(`accepted env ${JSON.stringify(q.env)}`);
            if (q.cwd !== undefined && !(typeof q.cwd === 'string' && q.cwd.startsWith('/')))
              throw new Error(`accepted cwd ${JSON.stringify(q.cwd)}`);
            if (q.user !== undefined) {
              const u = q.user as Record<string, unknown>;
              const id = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
              if (!id(u.uid) || !id(u.gid)) throw new Error(`accepted user ${JSON.stringify(u)}`);
            }
          },
        ),
    },
    {
      name: 'resolveEntrypoint: a module inside the rootfs or a SpecError, never a path outside',
      property: () =>
        fc.property(
          guestPath,
          fc.constantFrom('/', '/app', '/app/sub', '/nope'),
          fc.array(fc.constantFrom('PATH=/bin:/app', 'PATH=', 'PATH=relative:/', 'X=1', 'PATH=/etc-out'), {
            maxLength: 2,
          }),
          (arg0, cwd, env) => {
            const r = root();
            const real = fs.realpathSync(r);
            const e = only('resolveEntrypoint', () => resolveEntrypoint(r, arg0, cwd, env), isSpecError);
            if (e === undefined) return;
            const host = fs.realpathSync(e.hostPath);
            if (host !== real && !host.startsWith(real + '/'))
              throw new Error(`${arg0} (cwd ${cwd}) resolved to ${host}, outside ${real}`);
            if (!e.guestPath.startsWith('/')) throw new Error(`guest path ${e.guestPath} is relative`);
            if (!e.exportName) throw new Error('empty export name');
            if (!fs.statSync(host).isFile()) throw new Error(`${host} is not a file`);
          },
        ),
    },
    {
      name: "parseStartInput and startReply: any bytes on start's stdin are tolerated and answered",
      property: () =>
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 256 }),
            fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
          ),
          fc.record({
            MAX_SHIM_VERSION: fc.constantFrom(undefined, '', '2', '3', 'x'),
            WASMTS_SHIM_VERSION: fc.constantFrom(undefined, '2', '3', 'yes'),
          }),
          (bytes, env) => {
            const r = only(
              'parseStartInput',
              () => parseStartInput(bytes),
              () => false,
            )!;
            if (!['empty', 'bootstrap', 'other'].includes(r.kind)) throw new Error(`kind ${r.kind}`);
            for (const [k, v] of Object.entries(r)) {
              if (
                k === 'logLevel'
                  ? !Number.isInteger(v)
                  : k === 'optionTypes'
                    ? !(Array.isArray(v) && v.every((t) => typeof t === 'string'))
                    : typeof v !== 'string'
              ) {
                throw new Error(`${k} is ${JSON.stringify(v)}`);
              }
            }
            const address = 'unix:///run/containerd/s/0123';
            const reply = Buffer.from(
              only(
                'startReply',
                () => startReply(bytes, env, address),
                () => false,
              )!,
            );
            // plain, JSON or a BootstrapResult (tag 0x08): all of them carry the address
            if (!reply.includes(address)) throw new Error(`reply ${reply.toString('hex')} lacks the address`);
          },
        ),
    },
    {
      name: 'parseShimFlags: any argv parses or fails with a FlagError',
      property: () =>
        fc.property(
          fc.array(
            fc.oneof(
              fc.constantFrom(
                '-namespace',
                '-address',
                '-id',
                '-bundle',
                '-publish-binary',
                '-debug',
                '-debug=false',
                '-v',
                '--id',
                '-socket',
                'start',
                'delete',
                'serve',
                'launch',
                '-',
                '--',
                '-id=',
              ),
              fc.string({ maxLength: 12 }),
            ),
            { maxLength: 10 },
          ),
          (argv) => {
            only(
              'parseShimFlags',
              () => parseShimFlags(argv),
              (e) => e instanceof FlagError,
            );
          },
        ),
    },
  ].map((t) => ({
    ...t,
    teardown() {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
      tmp = undefined;
      rootfs = undefined;
    },
  }));
}

/** Runs one target for about `ms` milliseconds (at least a few runs); throws fast-check's report on failure. */
export async function runFor(target: FuzzTarget, ms: number, seed?: number): Promise<{ runs: number; seed: number }> {
  const s = seed ?? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
  let runs = 0;
  const params: fc.Parameters<unknown> = {
    seed: s,
    numRuns: 1_000_000_000,
    interruptAfterTimeLimit: ms,
    markInterruptAsFailure: false,
    reporter: (details) => {
      runs = details.numRuns;
      if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'property failed');
    },
  };
  try {
    await fc.assert(target.property(), params);
  } finally {
    target.teardown?.();
  }
  return { runs, seed: s };
}
