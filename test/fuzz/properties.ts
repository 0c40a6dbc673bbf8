// fast-check properties for the parsers that take bytes from outside the
// shim: the ttrpc FrameDecoder (any peer on the socket), and the bundle
// parsing (config.json, process specs, the Update RPC's resources, the
// entrypoint lookup, start's stdin, the command line, the daemon's messages to
// a Wasm child). Shared by test/fuzz/*.test.ts (a few seconds each) and
// scripts/fuzz.ts (as long as you like).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, HEADER_LENGTH, MAX_PAYLOAD, type DecodeEvent } from '../../src/ttrpc/frame.js';
import {
  checkProcess,
  parseLinuxResources,
  parseSpec,
  readAnnotations,
  readSpec,
  SpecError,
} from '../../src/bundle/index.js';
import { parseToChild, ProtocolError } from '../../src/child/protocol.js';
import { resolveEntrypoint } from '../../src/daemon/container/entrypoint.js';
import { parseStartInput, startReply } from '../../src/frontend/bootstrap.js';
import { FlagError, parseShimFlags } from '../../src/frontend/flags.js';

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

/** Numbers around every bound the resources parser has, and values that are not integers at all. */
const boundaryNumber = fc.oneof(
  fc.integer({ min: -3, max: 1_000_002 }),
  fc.constantFrom(-1, 0, 2, 999, 1000, 262_144, 262_145, 1_000_000, 1_000_001, 2 ** 53, 2 ** 63, 2 ** 64),
  fc.double(),
  fc.jsonValue({ maxDepth: 0 }),
);
const resourcesLike = fc.oneof(
  fc.record(
    {
      memory: fc.oneof(
        fc.record({ limit: boundaryNumber, swap: boundaryNumber }, { requiredKeys: [] }),
        fc.jsonValue(),
      ),
      cpu: fc.oneof(
        fc.record({ shares: boundaryNumber, quota: boundaryNumber, period: boundaryNumber }, { requiredKeys: [] }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      pids: fc.oneof(fc.record({ limit: boundaryNumber }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 1 })),
      devices: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

const isInt = (v: unknown, ok: (n: number) => boolean) => typeof v === 'number' && Number.isInteger(v) && ok(v);
const onlyKeys = (o: object, keys: string[]) => Object.keys(o).every((k) => keys.includes(k));

/** What parseLinuxResources may give, checked independently of it: only the applied fields, each in range. */
function resourcesProblem(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null || !onlyKeys(r, ['memory', 'cpu', 'pids'])) return 'shape';
  const { memory, cpu, pids } = r as {
    memory?: { limit?: unknown };
    cpu?: Record<string, unknown>;
    pids?: { limit?: unknown };
  };
  if (
    memory &&
    (!onlyKeys(memory, ['limit']) ||
      (memory.limit !== undefined && !isInt(memory.limit, (n) => n >= -1 && n <= 2 ** 63)))
  )
    return `memory ${JSON.stringify(memory)}`;
  if (cpu) {
    if (!onlyKeys(cpu, ['shares', 'quota', 'period'])) return 'cpu keys';
    if (cpu.shares !== undefined && !isInt(cpu.shares, (n) => n >= 0 && n <= 262_144))
      return `shares ${JSON.stringify(cpu.shares)}`;
    if (cpu.quota !== undefined && !isInt(cpu.quota, (n) => n === -1 || n === 0 || (n >= 1000 && n <= 2 ** 53)))
      return `quota ${JSON.stringify(cpu.quota)}`;
    if (cpu.period !== undefined && !isInt(cpu.period, (n) => n === 0 || (n >= 1000 && n <= 1_000_000)))
      return `period ${JSON.stringify(cpu.period)}`;
  }
  if (pids && (!onlyKeys(pids, ['limit']) || (pids.limit !== undefined && !isInt(pids.limit, (n) => n >= -1))))
    return `pids ${JSON.stringify(pids)}`;
  return undefined;
}

/** JSON values biased towards the shapes config.json and process specs have. */
const specLike = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 3 }),
    tie('process'),
    fc.record(
      {
        process: tie('process'),
        root: fc.oneof(fc.record({ path: fc.string(), readonly: fc.jsonValue({ maxDepth: 0 }) }), fc.jsonValue()),
        annotations: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.jsonValue()),
        mounts: fc.oneof(fc.array(tie('mount'), { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
        linux: fc.oneof(
          fc.record(
            { cgroupsPath: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 0 })), resources: resourcesLike },
            { requiredKeys: [] },
          ),
          fc.jsonValue({ maxDepth: 2 }),
        ),
      },
      { requiredKeys: [] },
    ),
  ),
  mount: fc.oneof(
    fc.record(
      {
        destination: fc.oneof(fc.constantFrom('/data', 'rel', ''), fc.jsonValue({ maxDepth: 0 })),
        source: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 0 })),
        type: fc.oneof(fc.constantFrom('bind', 'proc', 'tmpfs'), fc.jsonValue({ maxDepth: 0 })),
        options: fc.oneof(fc.array(fc.constantFrom('rbind', 'ro', 'bind')), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: [] },
    ),
    fc.jsonValue({ maxDepth: 1 }),
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

/** A field that is valid (and says so) or any JSON value. */
const field = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 4, arbitrary: good.map((value): { value: unknown; valid: boolean } => ({ value, valid: true })) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }).map((value) => ({ value, valid: false })) },
  );
const abs = fc.array(fc.constantFrom('a', 'b', 'rootfs', 'm.wasm'), { maxLength: 3 }).map((p) => `/${p.join('/')}`);
const childMessageLike = fc
  .record({
    containerId: field(fc.string()),
    execId: field(fc.string()),
    modulePath: field(abs),
    exportName: field(fc.constantFrom('_start', 'run')),
    args: field(fc.array(fc.string(), { maxLength: 3 })),
    env: field(fc.array(fc.string(), { maxLength: 3 })),
    preopens: field(fc.dictionary(fc.constantFrom('/', '/data'), abs)),
    stdout: field(fc.string()),
    stderr: field(fc.string()),
    user: field(fc.record({ uid: fc.nat({ max: 2 ** 32 - 1 }), gid: fc.nat({ max: 2 ** 32 - 1 }) })),
    trace: field(fc.record({ env: fc.dictionary(fc.string(), fc.string()) })),
    componentCache: field(fc.record({ dir: abs, maxBytes: fc.integer({ min: 1, max: 2 ** 40 }) })),
  })
  .chain((fields) =>
    fc.constantFrom('job', 'run', 'other').map((t) => {
      const job = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.value]));
      const valid = t === 'run' || (t === 'job' && Object.values(fields).every((f) => f.valid));
      return { message: t === 'run' ? { t } : { t, job }, valid };
    }),
  );

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
      name: 'parseSpec: an accepted spec holds only the fields the shim reads, each well-typed',
      property: () =>
        fc.property(specLike.value, (raw) => {
          const spec = only('parseSpec', () => parseSpec(raw, 'config.json'), isSpecError);
          if (spec === undefined) return;
          if (!onlyKeys(spec, ['process', 'root', 'mounts', 'annotations', 'linux'])) throw new Error('extra fields');
          const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
          if (!strings(spec.process.args) || spec.process.args.length === 0) throw new Error('process.args');
          const { root, mounts, annotations, linux } = spec;
          if (root && (!onlyKeys(root, ['path', 'readonly']) || !['undefined', 'string'].includes(typeof root.path)))
            throw new Error(`root ${JSON.stringify(root)}`);
          if (root && !['undefined', 'boolean'].includes(typeof root.readonly)) throw new Error('root.readonly');
          for (const m of mounts ?? []) {
            if (typeof m.destination !== 'string' || (m.options !== undefined && !strings(m.options)))
              throw new Error(`mount ${JSON.stringify(m)}`);
            if (!['undefined', 'string'].includes(typeof m.source) || !['undefined', 'string'].includes(typeof m.type))
              throw new Error(`mount ${JSON.stringify(m)}`);
          }
          if (annotations && !Object.values(annotations).every((v) => typeof v === 'string'))
            throw new Error('annotations');
          if (linux && !['undefined', 'string'].includes(typeof linux.cgroupsPath)) throw new Error('cgroupsPath');
          const problem = linux?.resources && resourcesProblem(linux.resources);
          if (problem) throw new Error(`accepted linux.resources: ${problem}`);
          // the parse is a fixed point: parsing what it gave gives the same
          const again = parseSpec(JSON.parse(JSON.stringify(spec)), 'config.json');
          if (JSON.stringify(again) !== JSON.stringify(spec)) throw new Error('not a fixed point');
        }),
    },
    {
      name: 'parseLinuxResources: accepted values are in range and nothing else comes through; the rest is a SpecError',
      property: () =>
        fc.property(resourcesLike, (raw) => {
          const r = only('parseLinuxResources', () => parseLinuxResources(raw, { where: '', name: 'r' }), isSpecError);
          if (r === undefined) return;
          const problem = resourcesProblem(r);
          if (problem) throw new Error(`accepted ${problem} from ${JSON.stringify(raw)}`);
        }),
    },
    {
      name: 'parseToChild: a message to the child is a well-formed job or run, or a ProtocolError; a valid job round-trips',
      property: () =>
        fc.property(childMessageLike, ({ message, valid }) => {
          const m = only(
            'parseToChild',
            () => parseToChild(message),
            (e) => e instanceof ProtocolError,
          );
          if (valid && JSON.stringify(m) !== JSON.stringify(message))
            throw new Error(`valid ${JSON.stringify(message)} came back as ${JSON.stringify(m)}`);
          if (m?.t !== 'job') return;
          const j = m.job;
          if (!path.isAbsolute(j.modulePath) || !j.exportName || !j.componentCache.dir.startsWith('/'))
            throw new Error(`accepted ${JSON.stringify(j)}`);
          if (!(j.componentCache.maxBytes > 0) || !Object.values(j.preopens).every((d) => path.isAbsolute(d)))
            throw new Error(`accepted ${JSON.stringify(j)}`);
        }),
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
                () => startReply(parseStartInput(bytes), env, address),
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
