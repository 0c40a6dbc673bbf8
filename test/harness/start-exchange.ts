// The `start` exchange as each containerd version performs it, rebuilt from
// its source (only 1.6 runs here): what it puts in the shim's environment and
// on its stdin, and how it decodes the shim's output into (version, address,
// protocol) and the task service it then calls.
//   1.6      runtime/v2/binary.go Start, runtime/v2/shim/util.go Command
//   1.7      the same files; runtime/v2/shim.go parseStartResponse
//   2.0-2.2  core/runtime/v2/binary.go, shim.go parseStartResponse,
//            bridge.go NewTaskClient, pkg/shim/util.go Command
//   2.3      the same; parseStartResponse tries proto.Unmarshal first, and
//            Command writes a binary BootstrapParams on stdin
// Go's behaviour that matters here is emulated strictly: bytes.TrimSpace,
// json.Unmarshal into {Version int; Address, Protocol string} and
// proto.Unmarshal (wire-format validation, UTF-8 for proto3 strings).
import { create, toBinary } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { BootstrapParamsSchema, LogLevel } from '../../src/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.js';
import { OptionsSchema } from '../../src/gen/runtimeoptions/v1/api_pb.js';

export type ContainerdVersion = '1.6' | '1.7' | '2.0' | '2.3';
/** 2.0 stands for 2.0 to 2.2: their start exchange is the same. */
export const VERSIONS: ContainerdVersion[] = ['1.6', '1.7', '2.0', '2.3'];

export interface StartCall {
  env: Record<string, string>;
  stdin: Uint8Array;
}

export interface StartCallOptions {
  id: string;
  namespace: string;
  grpcAddress: string;
  ttrpcAddress: string;
  /** Runtime options (ctr --runtime-config-path, or CRI with `options` in the runtime's config); undefined: none, stdin stays empty before 2.3. */
  configPath?: string;
  /** Extra env: containerd's own environment, or 2.x's [plugins."io.containerd.shim.v1.manager"] env. */
  env?: Record<string, string>;
  debug?: boolean;
}

function runtimeOptions(configPath: string): Uint8Array {
  // typeurl.MarshalAny of runtimeoptions.v1.Options: the bare registered name.
  return toBinary(
    AnySchema,
    create(AnySchema, {
      typeUrl: 'runtimeoptions.v1.Options',
      value: toBinary(OptionsSchema, create(OptionsSchema, { configPath })),
    }),
  );
}

/** What containerd `version` gives `<shim> ... start`, besides argv and cwd. */
export function startCall(version: ContainerdVersion, o: StartCallOptions): StartCall {
  const env: Record<string, string> = { ...(o.env ?? {}), GOMAXPROCS: '2', TTRPC_ADDRESS: o.ttrpcAddress };
  if (version !== '1.6')
    Object.assign(env, { MAX_SHIM_VERSION: '2', GRPC_ADDRESS: o.grpcAddress, NAMESPACE: o.namespace });
  if (version !== '2.3') return { env, stdin: o.configPath ? runtimeOptions(o.configPath) : new Uint8Array() };
  // 2.3: BootstrapParams for every shim not named *shim-runc-v1 / *shim-runhcs-v1.
  const params = create(BootstrapParamsSchema, {
    instanceId: o.id,
    namespace: o.namespace,
    logLevel: o.debug ? LogLevel.DEBUG : LogLevel.INFO,
    containerdVersion: 'v2.3.0',
    containerdTtrpcAddress: o.ttrpcAddress,
    containerdGrpcAddress: o.grpcAddress,
    containerdBinary: '/usr/bin/containerd',
    socketDir: '/run/containerd/s',
    extensions: o.configPath
      ? [
          {
            value: create(AnySchema, {
              typeUrl: 'runtimeoptions.v1.Options',
              value: toBinary(OptionsSchema, create(OptionsSchema, { configPath: o.configPath })),
            }),
          },
        ]
      : [],
  });
  return { env, stdin: toBinary(BootstrapParamsSchema, params) };
}

export interface Accepted {
  version: number;
  address: string;
  protocol: string;
  /** The ttrpc service containerd calls for the task API. */
  service: string;
}

/** How containerd `version` reads start's combined output; throws with containerd's error text. */
export function acceptReply(version: ContainerdVersion, output: Uint8Array): Accepted {
  const response = goTrimSpace(output);
  const text = Buffer.from(response).toString('utf8');
  if (version === '1.6') return connect(version, { version: 2, address: text, protocol: 'ttrpc' });
  if (version === '2.3') {
    const result = goProtoUnmarshalBootstrapResult(response);
    if (result) return connect(version, result);
  }
  const parsed = goJsonUnmarshalBootstrap(text);
  let params: { version: number; address: string; protocol: string };
  if (!parsed || parsed.version < 2) {
    // 2.x sets Version = 2 here; 1.7 leaves it as parsed, but only ever speaks v2.
    params = { version: 2, address: text, protocol: 'ttrpc' };
  } else {
    params = parsed;
  }
  const max = version === '1.7' ? 2 : 3;
  if (params.version > max) throw new Error(`unsupported shim version (${params.version}): not implemented`);
  return connect(version, params);
}

function connect(version: ContainerdVersion, p: { version: number; address: string; protocol: string }): Accepted {
  if (version !== '1.6') {
    const protocol = p.protocol.toLowerCase();
    if (protocol === 'grpc') throw new Error('grpc shims are out of scope of this emulation');
    if (protocol !== 'ttrpc') throw new Error(`unexpected protocol: ${JSON.stringify(p.protocol)}`);
  }
  let service = 'containerd.task.v2.Task';
  if (version === '2.0' || version === '2.3') {
    if (p.version === 3) service = 'containerd.task.v3.Task';
    else if (p.version !== 2)
      throw new Error(`containerd client supports only v2 and v3 TTRPC task client (got ${p.version})`);
  }
  return { version: p.version, address: p.address, protocol: p.protocol, service };
}

// ---------------------------------------------------------------------------
// Go's bytes.TrimSpace: unicode.IsSpace runes at both ends (invalid UTF-8 is not space).

const GO_SPACES = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0x2000, 0x2001,
  0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
]);

/** The rune starting at i, with its byte length; undefined if not valid UTF-8. */
function runeAt(b: Uint8Array, i: number): [number, number] | undefined {
  const c = b[i];
  if (c < 0x80) return [c, 1];
  const n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (n === 0 || i + n > b.length) return undefined;
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(i, i + n));
    return [s.codePointAt(0)!, n];
  } catch {
    return undefined;
  }
}

export function goTrimSpace(b: Uint8Array): Uint8Array {
  let start = 0;
  while (start < b.length) {
    const r = runeAt(b, start);
    if (!r || !GO_SPACES.has(r[0])) break;
    start += r[1];
  }
  let end = b.length;
  while (end > start) {
    let found = false;
    for (let n = 1; n <= 4 && end - n >= start; n++) {
      const r = runeAt(b, end - n);
      if (r && r[1] === n) {
        if (GO_SPACES.has(r[0])) {
          end -= n;
          found = true;
        }
        break;
      }
    }
    if (!found) break;
  }
  return b.subarray(start, end);
}

// ---------------------------------------------------------------------------
// json.Unmarshal(response, &BootstrapParams{Version int `json:"version"`; Address, Protocol string});
// undefined stands for a non-nil error.

export function goJsonUnmarshalBootstrap(
  text: string,
): { version: number; address: string; protocol: string } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const out = { version: 0, address: '', protocol: '' };
  if (raw === null) return out;
  if (typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  let failed = false;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const field = key.toLowerCase(); // Go matches keys case-insensitively
    if (value === null) continue;
    if (field === 'version') {
      if (typeof value === 'number' && Number.isInteger(value)) out.version = value;
      else failed = true;
    } else if (field === 'address' || field === 'protocol') {
      if (typeof value === 'string') out[field] = value;
      else failed = true;
    }
  }
  return failed ? undefined : out;
}

// ---------------------------------------------------------------------------
// proto.Unmarshal(response, &bootapi.BootstrapResult{}); undefined = error.

class WireError extends Error {}

class StrictReader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.b.length) throw new WireError('truncated varint');
      const byte = this.b[this.pos++];
      result |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if (byte < 0x80) return result;
    }
    throw new WireError('varint overflow');
  }
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.b.length) throw new WireError('truncated');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  tag(): [number, number] {
    const tag = this.varint();
    const num = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (num < 1 || num > 536870911) throw new WireError('invalid field number');
    if (wire > 5) throw new WireError('invalid wire type');
    return [num, wire];
  }
  skip(num: number, wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.take(8);
        return;
      case 2:
        this.take(Number(this.varint()));
        return;
      case 5:
        this.take(4);
        return;
      case 3:
        for (;;) {
          const [n, w] = this.tag();
          if (w === 4) {
            if (n !== num) throw new WireError('mismatched end group');
            return;
          }
          this.skip(n, w);
        }
      default:
        throw new WireError('unexpected end group');
    }
  }
}

function utf8(b: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new WireError('invalid UTF-8 in a string field');
  }
}

export function goProtoUnmarshalBootstrapResult(
  b: Uint8Array,
): { version: number; address: string; protocol: string } | undefined {
  const out = { version: 0, address: '', protocol: '' };
  const r = new StrictReader(b);
  try {
    while (!r.done) {
      const [num, wire] = r.tag();
      if (num === 1 && wire === 0) out.version = Number(BigInt.asIntN(32, r.varint()));
      else if (num === 2 && wire === 2) out.address = utf8(r.take(Number(r.varint())));
      else if (num === 3 && wire === 2) out.protocol = utf8(r.take(Number(r.varint())));
      else if (num === 4 && wire === 0) r.varint();
      else if (num === 4 && wire === 2) {
        const packed = new StrictReader(r.take(Number(r.varint())));
        while (!packed.done) packed.varint();
      } else if (num === 5 && wire === 2) {
        const entry = new StrictReader(r.take(Number(r.varint())));
        while (!entry.done) {
          const [n, w] = entry.tag();
          if ((n === 1 || n === 2) && w === 2) utf8(entry.take(Number(entry.varint())));
          else entry.skip(n, w);
        }
      } else if (wire === 4) {
        throw new WireError('unexpected end group');
      } else {
        r.skip(num, wire); // unknown fields are kept, not an error
      }
    }
  } catch (err) {
    if (err instanceof WireError) return undefined;
    throw err;
  }
  return out;
}
