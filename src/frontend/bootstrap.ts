// The bootstrap exchange of `start`, as pure functions: what containerd wrote
// on stdin, and what to print back so that each containerd version accepts it.
//
// What each version sends and accepts (read in containerd's runtime/v2
// binary.go, shim.go, shim_manager.go and pkg/shim/util.go; see
// docs/containerd.md "How containerd starts the shim"):
//   1.6      env TTRPC_ADDRESS; stdin empty or a google.protobuf.Any (runtime
//            options). Reads the reply as a plain address, nothing else.
//   1.7      adds MAX_SHIM_VERSION=2, GRPC_ADDRESS, NAMESPACE. Accepts a plain
//            address or JSON {"version":2,...}; refuses a version above 2.
//   2.0-2.2  sends exactly what 1.7 sends. Accepts a plain address (version 2)
//            or JSON with version 2 or 3; 3 means containerd.task.v3.Task, and
//            a CRI pod's other containers then reuse the shim without start
//            or delete.
//   2.3+     still MAX_SHIM_VERSION=2, but stdin is always a binary-protobuf
//            containerd.runtime.bootstrap.v1.BootstrapParams (its .proto
//            comment says JSON). Decodes a protobuf BootstrapResult first,
//            then JSON, then a plain address.
// 1.7 and 2.0-2.2 cannot be told apart from start's inputs, so they get a
// plain address (version 2) unless WASMTS_SHIM_VERSION=3 says containerd is
// 2.x. A plain address is accepted by every version, as version 2.
//
// A front end that does not parse stdin may print the plain address itself
// when stdin is empty, MAX_SHIM_VERSION is unset, empty or 2, and
// WASMTS_SHIM_VERSION is not 3; anything else must come here (2.3 always
// writes BootstrapParams, so it always does).
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

export interface StartInput {
  /**
   * empty: nothing on stdin; bootstrap: a BootstrapParams (2.3+, binary or
   * JSON); other: runtime options (an Any) or bytes we cannot read.
   */
  kind: 'empty' | 'bootstrap' | 'other';
  instanceId?: string;
  namespace?: string;
  /** BootstrapParams.log_level: 0 info, -4 debug, -8 trace, 4 warn, ... */
  logLevel?: number;
  containerdVersion?: string;
  ttrpcAddress?: string;
  grpcAddress?: string;
  containerdBinary?: string;
  /** Where 2.3 wants shim sockets (its `socket_dir` setting, /run/containerd/s by default). */
  socketDir?: string;
  /** type_url of the runtime options: the Any itself, or BootstrapParams' extensions. */
  optionTypes?: string[];
}

type StringField =
  'instanceId' | 'namespace' | 'containerdVersion' | 'ttrpcAddress' | 'grpcAddress' | 'containerdBinary' | 'socketDir';

const BOOTSTRAP_STRING_FIELDS: Record<number, StringField> = {
  1: 'instanceId',
  2: 'namespace',
  4: 'containerdVersion',
  5: 'ttrpcAddress',
  6: 'grpcAddress',
  7: 'containerdBinary',
  9: 'socketDir',
};
const LOG_LEVEL_FIELD = 3;
const EXTENSIONS_FIELD = 8;

export function parseStartInput(data: Uint8Array): StartInput {
  if (data.length === 0) return { kind: 'empty' };
  if (data[0] === 0x7b /* '{' */) return parseJson(data);
  try {
    return parseBinary(data);
  } catch {
    return { kind: 'other' }; // tolerated: the same options arrive again in Create
  }
}

function parseJson(data: Uint8Array): StartInput {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return { kind: 'other' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { kind: 'other' };
  const obj = raw as Record<string, unknown>;
  const pick = (snake: string, camel: string): string | undefined => {
    for (const k of [snake, camel]) if (typeof obj[k] === 'string' && obj[k]) return obj[k];
    return undefined;
  };
  const level = obj.log_level ?? obj.logLevel;
  return strip({
    kind: 'bootstrap',
    instanceId: pick('instance_id', 'instanceId'),
    namespace: pick('namespace', 'namespace'),
    logLevel: typeof level === 'number' && Number.isInteger(level) ? level : undefined,
    containerdVersion: pick('containerd_version', 'containerdVersion'),
    ttrpcAddress: pick('containerd_ttrpc_address', 'containerdTtrpcAddress'),
    grpcAddress: pick('containerd_grpc_address', 'containerdGrpcAddress'),
    containerdBinary: pick('containerd_binary', 'containerdBinary'),
    socketDir: pick('socket_dir', 'socketDir'),
  });
}

function parseBinary(data: Uint8Array): StartInput {
  // An Any carries only fields 1 (type_url) and 2 (value); BootstrapParams as
  // containerd 2.3 sends it always has fields from 4 on (version, addresses).
  const reader = new BinaryReader(data);
  const strings = new Map<number, string>();
  const optionTypes: string[] = [];
  let logLevel: number | undefined;
  let highest = 0;
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field < 1) throw new Error('field number 0');
    highest = Math.max(highest, field);
    if (wire === WireType.LengthDelimited && BOOTSTRAP_STRING_FIELDS[field]) {
      strings.set(field, reader.string());
    } else if (wire === WireType.Varint && field === LOG_LEVEL_FIELD) {
      logLevel = reader.int32();
    } else if (wire === WireType.LengthDelimited && field === EXTENSIONS_FIELD) {
      const type = extensionType(reader.bytes());
      if (type) optionTypes.push(type);
    } else {
      reader.skip(wire, field);
    }
  }
  if (highest <= 2) return strings.has(1) ? { kind: 'other', optionTypes: [strings.get(1)!] } : { kind: 'other' };
  const out: StartInput = { kind: 'bootstrap' };
  for (const [field, key] of Object.entries(BOOTSTRAP_STRING_FIELDS)) {
    const value = strings.get(Number(field));
    if (value) out[key] = value;
  }
  if (logLevel !== undefined) out.logLevel = logLevel;
  if (optionTypes.length) out.optionTypes = optionTypes;
  return out;
}

/** Extension{ google.protobuf.Any value = 1 } → the Any's type_url. */
function extensionType(bytes: Uint8Array): string | undefined {
  const ext = new BinaryReader(bytes);
  while (ext.pos < ext.len) {
    const [field, wire] = ext.tag();
    if (field === 1 && wire === WireType.LengthDelimited) {
      const any = new BinaryReader(ext.bytes());
      while (any.pos < any.len) {
        const [f, w] = any.tag();
        if (f === 1 && w === WireType.LengthDelimited) return any.string();
        any.skip(w, f);
      }
      return undefined;
    }
    ext.skip(wire, field);
  }
  return undefined;
}

function strip(input: StartInput): StartInput {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== undefined && v !== '') out[k] = v;
  return out as unknown as StartInput;
}

// ---------------------------------------------------------------------------
// the reply

export interface StartReply {
  /** 2: containerd.task.v2.Task, start and delete per container. 3: containerd.task.v3.Task too, pods reuse the shim. */
  version: 2 | 3;
  /** plain: the address alone; json: {"version","address","protocol"}; protobuf: a BootstrapResult. */
  encoding: 'plain' | 'json' | 'protobuf';
}

/** Environment variables the decision reads. */
export interface StartReplyEnv {
  /** Set by containerd 1.7 and later (to 2, even by 2.3); absent under 1.6. */
  MAX_SHIM_VERSION?: string;
  /** Ours, set in containerd's environment: 3 = "this containerd is 2.x, answer version 3"; 2 = never answer 3. */
  WASMTS_SHIM_VERSION?: string;
}

/** Our own override: only "2" and "3" mean anything. */
function wantedVersion(env: StartReplyEnv): 2 | 3 | undefined {
  const v = env.WASMTS_SHIM_VERSION?.trim();
  return v === '2' ? 2 : v === '3' ? 3 : undefined;
}

function announcedMax(env: StartReplyEnv): number | undefined {
  const raw = env.MAX_SHIM_VERSION?.trim();
  if (!raw || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

export function chooseStartReply(input: StartInput, env: StartReplyEnv): StartReply {
  const wanted = wantedVersion(env);
  // 2.3+: BootstrapParams on stdin; it decodes a protobuf BootstrapResult first and takes version 3.
  if (input.kind === 'bootstrap') return { version: wanted ?? 3, encoding: 'protobuf' };
  const max = announcedMax(env);
  // 1.6 announces nothing and reads only a plain address, whatever our override says.
  if (max === undefined) return { version: 2, encoding: 'plain' };
  // A containerd that announces 3 (none does yet) is 2.x or later: JSON.
  if (max >= 3 && wanted !== 2) return { version: 3, encoding: 'json' };
  // 1.7 and 2.0-2.2 look alike (MAX_SHIM_VERSION=2); only the user knows it is 2.x.
  if (wanted === 3) return { version: 3, encoding: 'json' };
  return { version: 2, encoding: 'plain' };
}

const SHIM_PROTOCOL = 'ttrpc';

export function encodeStartReply(reply: StartReply, address: string): Uint8Array {
  switch (reply.encoding) {
    case 'plain':
      return Buffer.from(address, 'utf8');
    case 'json':
      return Buffer.from(JSON.stringify({ version: reply.version, address, protocol: SHIM_PROTOCOL }), 'utf8');
    case 'protobuf':
      // BootstrapResult{version 1, address 2, protocol 3}, by hand to keep
      // start light. containerd trims whitespace off the output before
      // decoding: this starts with tag 0x08 and ends with the protocol's
      // last letter, so nothing is trimmed.
      return new BinaryWriter()
        .tag(1, WireType.Varint)
        .int32(reply.version)
        .tag(2, WireType.LengthDelimited)
        .string(address)
        .tag(3, WireType.LengthDelimited)
        .string(SHIM_PROTOCOL)
        .finish();
  }
}

/** What `start` prints, given what it read on stdin, its environment and the daemon's address. */
export function startReply(input: StartInput, env: StartReplyEnv, address: string): Uint8Array {
  return encodeStartReply(chooseStartReply(input, env), address);
}
