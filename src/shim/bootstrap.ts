// What containerd writes to `start`'s stdin: nothing (1.6–2.2 without options),
// a google.protobuf.Any with runtime options, or (2.3) BootstrapParams as
// protobuf or JSON. We only need the addresses and namespace from 2.3's
// params, when flags or env lack them; everything else is tolerated.
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

export interface StartInput {
  namespace?: string;
  ttrpcAddress?: string;
  grpcAddress?: string;
  containerdBinary?: string;
}

const BOOTSTRAP_STRING_FIELDS: Record<number, keyof StartInput> = {
  2: 'namespace',
  5: 'ttrpcAddress',
  6: 'grpcAddress',
  7: 'containerdBinary',
};

export function parseStartInput(data: Uint8Array): StartInput {
  if (data.length === 0) return {};
  if (data[0] === 0x7b /* '{' */) return parseJson(data);
  try {
    return parseBinary(data);
  } catch {
    return {}; // tolerated: the same options arrive again in Create
  }
}

function parseJson(data: Uint8Array): StartInput {
  try {
    const raw = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
    const pick = (...keys: string[]) => {
      for (const k of keys) if (typeof raw[k] === 'string' && raw[k]) return raw[k] as string;
      return undefined;
    };
    return strip({
      namespace: pick('namespace'),
      ttrpcAddress: pick('containerd_ttrpc_address', 'containerdTtrpcAddress'),
      grpcAddress: pick('containerd_grpc_address', 'containerdGrpcAddress'),
      containerdBinary: pick('containerd_binary', 'containerdBinary'),
    });
  } catch {
    return {};
  }
}

function parseBinary(data: Uint8Array): StartInput {
  // An Any carries only fields 1 and 2; BootstrapParams has fields up to 8.
  const reader = new BinaryReader(data);
  const strings = new Map<number, string>();
  let highest = 0;
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    highest = Math.max(highest, field);
    if (wire === WireType.LengthDelimited && BOOTSTRAP_STRING_FIELDS[field]) {
      strings.set(field, reader.string());
    } else {
      reader.skip(wire);
    }
  }
  if (highest <= 2 && !strings.has(5) && !strings.has(6)) return {}; // runtime-options Any
  const out: StartInput = {};
  for (const [field, key] of Object.entries(BOOTSTRAP_STRING_FIELDS)) {
    const value = strings.get(Number(field));
    if (value) out[key] = value;
  }
  return out;
}

function strip(input: StartInput): StartInput {
  const out: StartInput = {};
  for (const [k, v] of Object.entries(input)) if (v) out[k as keyof StartInput] = v;
  return out;
}
