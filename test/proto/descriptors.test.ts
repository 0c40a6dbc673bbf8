// Wire-contract test: every message/enum/service we generate from proto/ must
// match its upstream counterpart (by full name) field by field — name, number,
// type, label — so that a typo in a field number cannot land.
//
// Our side is read from the generated protobuf-es descriptors in src/gen/
// (what actually goes on the wire), never from our .proto text.
// Upstream side comes from Debian's golang-github-containerd-containerd-dev and
// golang-github-containerd-ttrpc-dev (+ their gogo dependencies) under
// /usr/share/gocode/src, parsed by test/proto/upstream-proto.ts. Those packages
// are installed by scripts/ensure-deps.sh; if they are missing, this test FAILS
// (it must not silently skip).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { clone, createFileRegistry, ScalarType } from '@bufbuild/protobuf';
import type { DescEnum, DescField, DescFile, DescMessage } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import {
  emptySchema,
  parseGoProtoStructs,
  parseProto,
  ProtoLoader,
  ProtoSyntaxError,
  type FieldModel,
  type SchemaModel,
} from './upstream-proto.js';

// ---------------------------------------------------------------------------
// Where things are.

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const GEN_DIR = join(REPO, 'src', 'gen');
const GOCODE = process.env.UPSTREAM_GOCODE_SRC ?? '/usr/share/gocode/src';
const CONTAINERD = 'github.com/containerd/containerd';

/** protoc -I roots, in the order containerd's own build uses them. */
const IMPORT_ROOTS = [
  GOCODE,
  join(GOCODE, 'github.com/gogo/protobuf'), // "gogoproto/gogo.proto"
  join(GOCODE, 'github.com/gogo/protobuf/protobuf'), // "google/protobuf/*.proto"
  '/usr/include', // protobuf-dev's google/protobuf, if present
];

type UpstreamSource =
  | { kind: 'proto'; path: string }
  | { kind: 'go-structs'; path: string; protoPackage: string }
  | { kind: 'hard-coded'; why: string; schema: () => SchemaModel };

interface Group {
  /** Our proto file name as recorded in the generated descriptor. */
  ours: string;
  upstream: UpstreamSource;
}

// google.rpc.Status: containerd/ttrpc use the genproto Go type, whose .proto
// is not shipped by genproto's Debian package; gogo/googleapis ships the same
// google/rpc/status.proto. Use the first .proto found; only if none exists
// fall back to the well-known definition (it has been frozen since 2015:
// code = 1 int32, message = 2 string, details = 3 repeated Any).
const STATUS_PROTO_CANDIDATES = [
  'github.com/gogo/googleapis/google/rpc/status.proto',
  'google.golang.org/genproto/googleapis/rpc/status.proto',
  'github.com/googleapis/googleapis/google/rpc/status.proto',
];
function wellKnownStatus(): SchemaModel {
  const s = emptySchema();
  s.messages.set('google.rpc.Status', {
    fullName: 'google.rpc.Status',
    fields: [
      { name: 'code', number: 1, label: 'singular', type: 'int32' },
      { name: 'message', number: 2, label: 'singular', type: 'string' },
      { name: 'details', number: 3, label: 'repeated', type: 'message google.protobuf.Any' },
    ],
  });
  return s;
}
const statusProto = STATUS_PROTO_CANDIDATES.find((p) => existsSync(join(GOCODE, p)));

const GROUPS: Group[] = [
  {
    ours: 'containerd/task/v2/shim.proto',
    upstream: { kind: 'proto', path: `${CONTAINERD}/runtime/v2/task/shim.proto` },
  },
  { ours: 'containerd/types/mount.proto', upstream: { kind: 'proto', path: `${CONTAINERD}/api/types/mount.proto` } },
  {
    ours: 'containerd/types/task/task.proto',
    upstream: { kind: 'proto', path: `${CONTAINERD}/api/types/task/task.proto` },
  },
  { ours: 'containerd/events/task.proto', upstream: { kind: 'proto', path: `${CONTAINERD}/api/events/task.proto` } },
  {
    ours: 'containerd/services/events/ttrpc/v1/events.proto',
    upstream: { kind: 'proto', path: `${CONTAINERD}/api/services/ttrpc/events/v1/events.proto` },
  },
  {
    ours: 'runtimeoptions/v1/api.proto',
    upstream: { kind: 'proto', path: `${CONTAINERD}/pkg/runtimeoptions/v1/api.proto` },
  },
  {
    ours: 'cgroups/v1/metrics.proto',
    upstream: { kind: 'proto', path: 'github.com/containerd/cgroups/stats/v1/metrics.proto' },
  },
  {
    ours: 'google/rpc/status.proto',
    upstream: statusProto
      ? { kind: 'proto', path: statusProto }
      : { kind: 'hard-coded', why: 'no google/rpc/status.proto under ' + GOCODE, schema: wellKnownStatus },
  },
  // ttrpc's Request/Response/KeyValue have no .proto upstream: they are Go
  // structs with protobuf struct tags. Go package ttrpc → proto package ttrpc.
  {
    ours: 'ttrpc/ttrpc.proto',
    upstream: { kind: 'go-structs', path: 'github.com/containerd/ttrpc/types.go', protoPackage: 'ttrpc' },
  },
];

/**
 * Our files with no upstream source available here. containerd.runtime.bootstrap.v1
 * appeared in containerd 2.3; Debian ships containerd 1.6, which lacks it, so it
 * is pinned against the hard-coded table BOOTSTRAP_TABLE below instead.
 */
const NO_UPSTREAM_FILE = new Set(['containerd/runtime/bootstrap/v1/bootstrap.proto']);

/**
 * Generated files outside this test's scope (the containerd/ttrpc wire
 * contract). OTLP (opentelemetry/proto/...) has no upstream .proto in the
 * Debian packages installed here; it is not checked by this test. Nor has the
 * CRI (cri/runtime/v1, test tooling only): test/cri/ drives a real
 * containerd's CRI plugin with it, so a wrong field number fails there.
 */
const OUT_OF_SCOPE_PREFIXES = ['opentelemetry/', 'cri/'];

// ---------------------------------------------------------------------------
// Explicit exceptions. Anything not listed here must match exactly.

interface NewerField extends FieldModel {
  since: string;
}

interface Exceptions {
  /** Messages that deliberately declare only some of upstream's fields: full name → the field names we declare. */
  subsetOf: Record<string, readonly string[]>;
  /** Fields that exist in newer upstream than the one installed here: full name → exact field definitions. */
  newerThanUpstream: Record<string, readonly NewerField[]>;
}

const EXCEPTIONS: Exceptions = {
  subsetOf: {
    // Stats only fills these; hugetlb/blkio/rdma/network/cgroup_stats/memory_oom_control are omitted.
    'io.containerd.cgroups.v1.Metrics': ['pids', 'cpu', 'memory'],
  },
  newerThanUpstream: {
    'runtimeoptions.v1.Options': [
      {
        name: 'config_body',
        number: 3,
        label: 'singular',
        type: 'string',
        since: 'containerd 2.x (Debian ships 1.6, which lacks it)',
      },
    ],
  },
};

const NO_EXCEPTIONS: Exceptions = { subsetOf: {}, newerThanUpstream: {} };

// ---------------------------------------------------------------------------
// Upstream availability: missing sources are a failure, with a hint.

function requiredUpstreamPaths(): string[] {
  const paths: string[] = [];
  for (const g of GROUPS) if (g.upstream.kind !== 'hard-coded') paths.push(join(GOCODE, g.upstream.path));
  return paths;
}

function requireUpstream(): void {
  const missing = requiredUpstreamPaths().filter((p) => !existsSync(p));
  if (missing.length > 0) {
    assert.fail(
      `upstream proto sources missing (${missing.length}):\n  ${missing.join('\n  ')}\n` +
        `Run scripts/ensure-deps.sh (installs golang-github-containerd-containerd-dev and ` +
        `golang-github-containerd-ttrpc-dev under ${GOCODE}).`,
    );
  }
}

const loader = new ProtoLoader({ roots: IMPORT_ROOTS });

function upstreamSchema(src: UpstreamSource): SchemaModel {
  switch (src.kind) {
    case 'proto':
      return loader.schemaOf(src.path);
    case 'go-structs':
      return parseGoProtoStructs(join(GOCODE, src.path), { goSrcRoot: GOCODE, protoPackage: src.protoPackage });
    case 'hard-coded':
      return src.schema();
  }
}

// ---------------------------------------------------------------------------
// Our side: generated protobuf-es descriptors.

async function loadGenFiles(): Promise<Map<string, DescFile>> {
  const files = new Map<string, DescFile>();
  const entries = readdirSync(GEN_DIR, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('_pb.ts'))
    .sort();
  for (const rel of entries) {
    const mod = (await import(pathToFileURL(join(GEN_DIR, rel)).href)) as Record<string, unknown>;
    const fileExports = Object.entries(mod).filter(([k]) => k.startsWith('file_'));
    assert.equal(fileExports.length, 1, `src/gen/${rel.split(sep).join('/')}: expected exactly one file_* export`);
    const desc = fileExports[0][1] as DescFile;
    files.set(desc.proto.name, desc);
  }
  return files;
}

const scalarName = (t: ScalarType): string => ScalarType[t].toLowerCase();

function fieldModel(f: DescField): FieldModel {
  let label: FieldModel['label'];
  let type: string;
  switch (f.fieldKind) {
    case 'scalar':
      label = 'singular';
      type = scalarName(f.scalar);
      break;
    case 'enum':
      label = 'singular';
      type = `enum ${f.enum.typeName}`;
      break;
    case 'message':
      label = 'singular';
      type = `message ${f.message.typeName}`;
      break;
    case 'list':
      label = 'repeated';
      type =
        f.listKind === 'scalar'
          ? scalarName(f.scalar)
          : f.listKind === 'enum'
            ? `enum ${f.enum.typeName}`
            : `message ${f.message.typeName}`;
      break;
    case 'map': {
      label = 'map';
      const v =
        f.mapKind === 'scalar'
          ? scalarName(f.scalar)
          : f.mapKind === 'enum'
            ? `enum ${f.enum.typeName}`
            : `message ${f.message.typeName}`;
      type = `map<${scalarName(f.mapKey)}, ${v}>`;
      break;
    }
  }
  const out: FieldModel = { name: f.name, number: f.number, label, type };
  if (f.oneof) out.oneof = f.oneof.name;
  return out;
}

function schemaFromDesc(file: DescFile): SchemaModel {
  const s = emptySchema();
  const addEnum = (e: DescEnum) =>
    s.enums.set(e.typeName, {
      fullName: e.typeName,
      values: e.values.map((v) => ({ name: v.name, number: v.number })),
    });
  const addMessage = (m: DescMessage): void => {
    if (m.proto.options?.mapEntry) return;
    s.messages.set(m.typeName, { fullName: m.typeName, fields: m.fields.map(fieldModel) });
    m.nestedMessages.forEach(addMessage);
    m.nestedEnums.forEach(addEnum);
  };
  file.messages.forEach(addMessage);
  file.enums.forEach(addEnum);
  for (const svc of file.services) {
    s.services.set(svc.typeName, {
      fullName: svc.typeName,
      methods: svc.methods.map((m) => ({
        name: m.name,
        input: m.input.typeName,
        output: m.output.typeName,
        clientStreaming: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
        serverStreaming: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
      })),
    });
  }
  return s;
}

// ---------------------------------------------------------------------------
// The comparator.

const fmtField = (f: FieldModel) =>
  `${f.name} = ${f.number} (${f.label === 'repeated' ? 'repeated ' : ''}${f.type}${f.oneof ? `, oneof ${f.oneof}` : ''})`;

function compareFields(msg: string, ours: FieldModel[], up: FieldModel[], ex: Exceptions, diffs: string[]): void {
  const at = (f: string) => `message ${msg}, field "${f}"`;
  const compareOne = (o: FieldModel, u: FieldModel) => {
    if (o.name !== u.name)
      diffs.push(`message ${msg}, field number ${o.number}: name differs (ours "${o.name}", upstream "${u.name}")`);
    if (o.number !== u.number) diffs.push(`${at(o.name)}: number differs (ours ${o.number}, upstream ${u.number})`);
    if (o.label !== u.label) diffs.push(`${at(o.name)}: label differs (ours ${o.label}, upstream ${u.label})`);
    if (o.type !== u.type) diffs.push(`${at(o.name)}: type differs (ours ${o.type}, upstream ${u.type})`);
    if ((o.oneof ?? '') !== (u.oneof ?? ''))
      diffs.push(`${at(o.name)}: oneof differs (ours ${o.oneof ?? 'none'}, upstream ${u.oneof ?? 'none'})`);
  };
  // Pair by name first (clearest message for a number typo), then pair the
  // leftovers by number (a rename), then report what is left on either side.
  const upLeft = new Map(up.map((f) => [f.name, f]));
  const oursLeft: FieldModel[] = [];
  for (const o of ours) {
    const u = upLeft.get(o.name);
    if (u) {
      compareOne(o, u);
      upLeft.delete(o.name);
    } else oursLeft.push(o);
  }
  const upByNumber = new Map([...upLeft.values()].map((f) => [f.number, f]));
  const extra: FieldModel[] = [];
  for (const o of oursLeft) {
    const u = upByNumber.get(o.number);
    if (u) {
      compareOne(o, u);
      upLeft.delete(u.name);
      upByNumber.delete(u.number);
    } else extra.push(o);
  }
  const newer = ex.newerThanUpstream[msg] ?? [];
  for (const o of extra) {
    const allowed = newer.find((n) => n.name === o.name);
    if (!allowed) diffs.push(`${at(o.name)}: ours declares ${fmtField(o)} but upstream has no such field`);
    else if (
      allowed.number !== o.number ||
      allowed.label !== o.label ||
      allowed.type !== o.type ||
      o.oneof !== undefined
    )
      diffs.push(
        `${at(o.name)}: allowed only as newer-than-upstream ${fmtField(allowed)} (${allowed.since}), but ours is ${fmtField(o)}`,
      );
  }
  for (const n of newer) {
    if (!ours.some((o) => o.name === n.name))
      diffs.push(
        `${at(n.name)}: listed as newer-than-upstream (${n.since}) but ours does not declare it (stale exception?)`,
      );
  }
  const subset = ex.subsetOf[msg];
  for (const u of upLeft.values()) {
    if (subset && !subset.includes(u.name)) continue;
    diffs.push(`${at(u.name)}: upstream has ${fmtField(u)}, missing from ours`);
  }
  if (subset) {
    for (const name of subset)
      if (!ours.some((o) => o.name === name))
        diffs.push(`${at(name)}: subset allow-list says we declare it, but ours does not`);
    for (const o of ours)
      if (!subset.includes(o.name))
        diffs.push(`${at(o.name)}: ours declares it, but the subset allow-list for ${msg} does not list it`);
  }
}

/**
 * Compare every message/enum/service of `ours` with its upstream counterpart by
 * full name. Returns human-readable differences (empty = match).
 */
function compareSchemas(ours: SchemaModel, upstream: SchemaModel, ex: Exceptions): string[] {
  const diffs: string[] = [];
  const kindOf = (s: SchemaModel, n: string) =>
    s.messages.has(n) ? 'message' : s.enums.has(n) ? 'enum' : s.services.has(n) ? 'service' : undefined;
  const missing = (kind: string, name: string) => {
    const other = kindOf(upstream, name);
    diffs.push(
      other ? `${kind} ${name}: ours is a ${kind}, upstream is a ${other}` : `${kind} ${name}: no upstream counterpart`,
    );
  };
  for (const [name, m] of ours.messages) {
    const u = upstream.messages.get(name);
    if (!u) {
      missing('message', name);
      continue;
    }
    compareFields(name, m.fields, u.fields, ex, diffs);
  }
  for (const [name, e] of ours.enums) {
    const u = upstream.enums.get(name);
    if (!u) {
      missing('enum', name);
      continue;
    }
    const upLeft = new Map(u.values.map((v) => [v.name, v]));
    for (const v of e.values) {
      const uv = upLeft.get(v.name);
      if (!uv) {
        diffs.push(`enum ${name}, value "${v.name}" = ${v.number}: upstream has no such value`);
        continue;
      }
      if (uv.number !== v.number)
        diffs.push(`enum ${name}, value "${v.name}": number differs (ours ${v.number}, upstream ${uv.number})`);
      upLeft.delete(v.name);
    }
    for (const uv of upLeft.values())
      diffs.push(`enum ${name}, value "${uv.name}" = ${uv.number}: upstream has it, missing from ours`);
  }
  for (const [name, s] of ours.services) {
    const u = upstream.services.get(name);
    if (!u) {
      missing('service', name);
      continue;
    }
    const upLeft = new Map(u.methods.map((m) => [m.name, m]));
    for (const m of s.methods) {
      const um = upLeft.get(m.name);
      if (!um) {
        diffs.push(`service ${name}, rpc ${m.name}: upstream has no such method`);
        continue;
      }
      upLeft.delete(m.name);
      for (const k of ['input', 'output', 'clientStreaming', 'serverStreaming'] as const)
        if (m[k] !== um[k])
          diffs.push(`service ${name}, rpc ${m.name}: ${k} differs (ours ${m[k]}, upstream ${um[k]})`);
    }
    for (const um of upLeft.values()) diffs.push(`service ${name}, rpc ${um.name}: upstream has it, missing from ours`);
  }
  return diffs;
}

function assertNoDiffs(diffs: string[], what: string): void {
  assert.deepEqual(diffs, [], `${what}: ${diffs.length} difference(s):\n  ${diffs.join('\n  ')}`);
}

// ---------------------------------------------------------------------------
// containerd.runtime.bootstrap.v1 (containerd 2.3) — not in Debian's 1.6
// package, so its field numbers are pinned here by hand, from
// api/runtime/bootstrap/v1/bootstrap.proto at containerd v2.3.0 (unchanged
// up to v2.4.0-beta.0).

const BOOT = 'containerd.runtime.bootstrap.v1';
const BOOTSTRAP_TABLE: SchemaModel = (() => {
  const s = emptySchema();
  const msg = (name: string, fields: FieldModel[]) =>
    s.messages.set(`${BOOT}.${name}`, { fullName: `${BOOT}.${name}`, fields });
  const f = (name: string, number: number, type: string, label: FieldModel['label'] = 'singular'): FieldModel => ({
    name,
    number,
    label,
    type,
  });
  msg('BootstrapParams', [
    f('instance_id', 1, 'string'),
    f('namespace', 2, 'string'),
    f('log_level', 3, `enum ${BOOT}.LogLevel`),
    f('containerd_version', 4, 'string'),
    f('containerd_ttrpc_address', 5, 'string'),
    f('containerd_grpc_address', 6, 'string'),
    f('containerd_binary', 7, 'string'),
    f('extensions', 8, `message ${BOOT}.Extension`, 'repeated'),
    f('socket_dir', 9, 'string'), // proto3 optional
  ]);
  msg('Extension', [f('value', 1, 'message google.protobuf.Any')]);
  msg('BootstrapResult', [
    f('version', 1, 'int32'),
    f('address', 2, 'string'),
    f('protocol', 3, 'string'),
    f('capabilities', 4, `enum ${BOOT}.Capability`, 'repeated'),
    f('metadata', 5, 'map<string, string>', 'map'),
  ]);
  return s;
})();
/** Enums whose values the table does not pin (only their use as field types above is checked). */
const BOOTSTRAP_UNPINNED_ENUMS = [`${BOOT}.LogLevel`, `${BOOT}.Capability`];

// ---------------------------------------------------------------------------
// Tests.

const genFiles = await loadGenFiles();
const ourSchema = (protoName: string): SchemaModel => {
  const f = genFiles.get(protoName);
  assert.ok(f, `no generated descriptor for ${protoName} in src/gen (run npx buf generate?)`);
  return schemaFromDesc(f);
};

describe('wire contract vs upstream', () => {
  test('upstream sources are installed (run scripts/ensure-deps.sh if not)', () => {
    assert.ok(
      existsSync(join(GOCODE, 'github.com/containerd')),
      `${join(GOCODE, 'github.com/containerd')} does not exist. Run scripts/ensure-deps.sh ` +
        `(installs golang-github-containerd-containerd-dev and golang-github-containerd-ttrpc-dev).`,
    );
    requireUpstream();
  });

  test('every generated containerd/ttrpc file is covered by an upstream comparison or the hard-coded table', () => {
    const covered = new Set([...GROUPS.map((g) => g.ours), ...NO_UPSTREAM_FILE]);
    const generated = [...genFiles.keys()].filter((n) => !OUT_OF_SCOPE_PREFIXES.some((p) => n.startsWith(p))).sort();
    assert.deepEqual(
      generated.filter((n) => !covered.has(n)),
      [],
      'generated files with no upstream check: add them to GROUPS',
    );
    assert.deepEqual(
      [...covered].filter((n) => !genFiles.has(n)),
      [],
      'GROUPS lists files that are not generated',
    );
  });

  for (const g of GROUPS) {
    const src = g.upstream.kind === 'hard-coded' ? `hard-coded (${g.upstream.why})` : g.upstream.path;
    test(`${g.ours} matches ${src}`, (t) => {
      if (g.upstream.kind !== 'hard-coded') requireUpstream();
      else t.diagnostic(`using hard-coded definition: ${g.upstream.why}`);
      const ours = ourSchema(g.ours);
      assert.ok(ours.messages.size + ours.enums.size + ours.services.size > 0, `${g.ours}: nothing to compare`);
      assertNoDiffs(compareSchemas(ours, upstreamSchema(g.upstream), EXCEPTIONS), g.ours);
      const nFields = [...ours.messages.values()].reduce((n, m) => n + m.fields.length, 0);
      const nMethods = [...ours.services.values()].reduce((n, sv) => n + sv.methods.length, 0);
      t.diagnostic(
        `compared ${ours.messages.size} messages (${nFields} fields), ${ours.enums.size} enums, ${nMethods} rpcs`,
      );
    });
  }

  test('containerd.task.v2.Task service: method names and input/output types match upstream', () => {
    requireUpstream();
    // Also covered by the shim.proto comparison above; asserted separately so
    // a service that silently vanished from either side cannot go unnoticed.
    const ours = ourSchema('containerd/task/v2/shim.proto').services.get('containerd.task.v2.Task');
    const up = loader.schemaOf(`${CONTAINERD}/runtime/v2/task/shim.proto`).services.get('containerd.task.v2.Task');
    assert.ok(ours && up, 'Task service missing on one side');
    assert.equal(ours.methods.length, 17);
    assert.deepEqual(ours.methods, up.methods);
    const events = ourSchema('containerd/services/events/ttrpc/v1/events.proto').services.get(
      'containerd.services.events.ttrpc.v1.Events',
    );
    assert.deepEqual(
      events?.methods.map((m) => `${m.name}(${m.input}) ${m.output}`),
      ['Forward(containerd.services.events.ttrpc.v1.ForwardRequest) google.protobuf.Empty'],
    );
  });

  test(`${BOOT} (containerd 2.3, absent from Debian's containerd 1.6) matches the hard-coded field table`, () => {
    const ours = ourSchema('containerd/runtime/bootstrap/v1/bootstrap.proto');
    for (const e of BOOTSTRAP_UNPINNED_ENUMS) assert.ok(ours.enums.delete(e), `expected enum ${e}`);
    assertNoDiffs(compareSchemas(ours, BOOTSTRAP_TABLE, NO_EXCEPTIONS), BOOT);
  });
});

// ---------------------------------------------------------------------------
// Negative self-tests: the comparator must catch deliberate breakage.

describe('comparator catches deliberate mismatches', () => {
  const deepCopy = (s: SchemaModel): SchemaModel => ({
    messages: new Map([...s.messages].map(([k, v]) => [k, { ...v, fields: v.fields.map((f) => ({ ...f })) }])),
    enums: new Map([...s.enums].map(([k, v]) => [k, { ...v, values: v.values.map((x) => ({ ...x })) }])),
    services: new Map([...s.services].map(([k, v]) => [k, { ...v, methods: v.methods.map((m) => ({ ...m })) }])),
  });
  const field = (s: SchemaModel, msg: string, name: string): FieldModel => {
    const f = s.messages.get(msg)?.fields.find((x) => x.name === name);
    assert.ok(f, `${msg}.${name} not found`);
    return f;
  };
  const upstreamOf = (ours: string) => upstreamSchema(GROUPS.find((g) => g.ours === ours)!.upstream);

  test('altered generated descriptor (field number, scalar type, rpc output) is reported', () => {
    requireUpstream();
    const shim = genFiles.get('containerd/task/v2/shim.proto')!;
    const proto = clone(FileDescriptorProtoSchema, shim.proto);
    const msg = (n: string) => proto.messageType.find((m) => m.name === n)!;
    msg('CreateTaskRequest').field.find((f) => f.name === 'bundle')!.number = 12;
    msg('CreateTaskResponse').field.find((f) => f.name === 'pid')!.type = FieldDescriptorProto_Type.INT32;
    proto.service[0].method.find((m) => m.name === 'Kill')!.outputType = '.containerd.task.v2.WaitResponse';
    const deps = new Map(shim.dependencies.map((d) => [d.proto.name, d]));
    const altered = createFileRegistry(proto, (name) => deps.get(name)).getFile(shim.proto.name);
    assert.ok(altered);
    const diffs = compareSchemas(schemaFromDesc(altered), upstreamOf('containerd/task/v2/shim.proto'), EXCEPTIONS);
    assert.deepEqual(diffs.sort(), [
      'message containerd.task.v2.CreateTaskRequest, field "bundle": number differs (ours 12, upstream 2)',
      'message containerd.task.v2.CreateTaskResponse, field "pid": type differs (ours int32, upstream uint32)',
      'service containerd.task.v2.Task, rpc Kill: output differs (ours containerd.task.v2.WaitResponse, upstream google.protobuf.Empty)',
    ]);
  });

  test('altered upstream text (field number) is reported through the parser', () => {
    requireUpstream();
    const path = `${CONTAINERD}/runtime/v2/task/shim.proto`;
    const text = readFileSync(join(GOCODE, path), 'utf8');
    const changed = text.replace(/(message WaitResponse \{\s*uint32 exit_status = )1;/, '$17;');
    assert.notEqual(changed, text, 'fixture substitution failed');
    const alt = new ProtoLoader({ roots: IMPORT_ROOTS, virtualFiles: { [path]: changed } });
    const diffs = compareSchemas(ourSchema('containerd/task/v2/shim.proto'), alt.schemaOf(path), EXCEPTIONS);
    assert.deepEqual(diffs, [
      'message containerd.task.v2.WaitResponse, field "exit_status": number differs (ours 1, upstream 7)',
    ]);
  });

  test('label, rename, missing/extra field, enum value, map value, kind and service changes are reported', () => {
    requireUpstream();
    const cases: [string, string, (s: SchemaModel) => void, string[]][] = [
      [
        'containerd/types/mount.proto',
        'repeated→singular',
        (s) => {
          field(s, 'containerd.types.Mount', 'options').label = 'singular';
        },
        ['message containerd.types.Mount, field "options": label differs (ours singular, upstream repeated)'],
      ],
      [
        'containerd/types/mount.proto',
        'rename',
        (s) => {
          field(s, 'containerd.types.Mount', 'target').name = 'destination';
        },
        ['message containerd.types.Mount, field number 3: name differs (ours "destination", upstream "target")'],
      ],
      [
        'containerd/services/events/ttrpc/v1/events.proto',
        'missing field',
        (s) => {
          const m = s.messages.get('containerd.services.events.ttrpc.v1.Envelope')!;
          m.fields = m.fields.filter((f) => f.name !== 'topic');
        },
        [
          'message containerd.services.events.ttrpc.v1.Envelope, field "topic": upstream has topic = 3 (string), missing from ours',
        ],
      ],
      [
        'containerd/events/task.proto',
        'extra field',
        (s) => {
          s.messages
            .get('containerd.events.TaskOOM')!
            .fields.push({ name: 'pid', number: 2, label: 'singular', type: 'uint32' });
        },
        [
          'message containerd.events.TaskOOM, field "pid": ours declares pid = 2 (uint32) but upstream has no such field',
        ],
      ],
      [
        'containerd/types/task/task.proto',
        'enum value number',
        (s) => {
          s.enums.get('containerd.v1.types.Status')!.values.find((v) => v.name === 'PAUSING')!.number = 6;
        },
        ['enum containerd.v1.types.Status, value "PAUSING": number differs (ours 6, upstream 5)'],
      ],
      [
        'containerd/types/task/task.proto',
        'message type',
        (s) => {
          field(s, 'containerd.v1.types.Process', 'status').type = 'uint32';
        },
        [
          'message containerd.v1.types.Process, field "status": type differs (ours uint32, upstream enum containerd.v1.types.Status)',
        ],
      ],
      [
        'containerd/task/v2/shim.proto',
        'map value',
        (s) => {
          field(s, 'containerd.task.v2.UpdateTaskRequest', 'annotations').type = 'map<string, bytes>';
        },
        [
          'message containerd.task.v2.UpdateTaskRequest, field "annotations": type differs (ours map<string, bytes>, upstream map<string, string>)',
        ],
      ],
      [
        'containerd/task/v2/shim.proto',
        'dropped rpc',
        (s) => {
          const svc = s.services.get('containerd.task.v2.Task')!;
          svc.methods = svc.methods.filter((m) => m.name !== 'Shutdown');
        },
        ['service containerd.task.v2.Task, rpc Shutdown: upstream has it, missing from ours'],
      ],
      [
        'containerd/task/v2/shim.proto',
        'unknown message',
        (s) => {
          s.messages.set('containerd.task.v2.Bogus', { fullName: 'containerd.task.v2.Bogus', fields: [] });
        },
        ['message containerd.task.v2.Bogus: no upstream counterpart'],
      ],
      [
        'ttrpc/ttrpc.proto',
        'ttrpc struct-tag number',
        (s) => {
          field(s, 'ttrpc.Request', 'timeout_nano').number = 6;
        },
        ['message ttrpc.Request, field "timeout_nano": number differs (ours 6, upstream 4)'],
      ],
      [
        'google/rpc/status.proto',
        'status details label',
        (s) => {
          field(s, 'google.rpc.Status', 'details').label = 'singular';
        },
        ['message google.rpc.Status, field "details": label differs (ours singular, upstream repeated)'],
      ],
    ];
    for (const [file, what, mutate, expected] of cases) {
      const ours = deepCopy(ourSchema(file));
      mutate(ours);
      assert.deepEqual(compareSchemas(ours, upstreamOf(file), EXCEPTIONS), expected, what);
    }
  });

  test('exceptions are exact: wrong config_body number, unlisted Metrics field, and no exceptions at all', () => {
    requireUpstream();
    const opts = deepCopy(ourSchema('runtimeoptions/v1/api.proto'));
    field(opts, 'runtimeoptions.v1.Options', 'config_body').number = 4;
    assert.deepEqual(compareSchemas(opts, upstreamOf('runtimeoptions/v1/api.proto'), EXCEPTIONS), [
      'message runtimeoptions.v1.Options, field "config_body": allowed only as newer-than-upstream config_body = 3 (string) ' +
        '(containerd 2.x (Debian ships 1.6, which lacks it)), but ours is config_body = 4 (string)',
    ]);
    // Without the exception lists, both real deviations are reported.
    assert.deepEqual(
      compareSchemas(
        ourSchema('runtimeoptions/v1/api.proto'),
        upstreamOf('runtimeoptions/v1/api.proto'),
        NO_EXCEPTIONS,
      ),
      [
        'message runtimeoptions.v1.Options, field "config_body": ours declares config_body = 3 (string) but upstream has no such field',
      ],
    );
    const metricsDiffs = compareSchemas(
      ourSchema('cgroups/v1/metrics.proto'),
      upstreamOf('cgroups/v1/metrics.proto'),
      NO_EXCEPTIONS,
    );
    assert.deepEqual(metricsDiffs.map((d) => /field "(\w+)"/.exec(d)?.[1]).sort(), [
      'blkio',
      'cgroup_stats',
      'hugetlb',
      'memory_oom_control',
      'network',
      'rdma',
    ]);
    // A field outside the subset allow-list is reported even if upstream has it.
    const metrics = deepCopy(ourSchema('cgroups/v1/metrics.proto'));
    metrics.messages.get('io.containerd.cgroups.v1.Metrics')!.fields.push({
      name: 'rdma',
      number: 6,
      label: 'singular',
      type: 'message io.containerd.cgroups.v1.RdmaStat',
    });
    assert.deepEqual(compareSchemas(metrics, upstreamOf('cgroups/v1/metrics.proto'), EXCEPTIONS), [
      'message io.containerd.cgroups.v1.Metrics, field "rdma": ours declares it, but the subset allow-list for io.containerd.cgroups.v1.Metrics does not list it',
    ]);
  });

  test('bootstrap table catches a wrong field number', () => {
    const ours = deepCopy(ourSchema('containerd/runtime/bootstrap/v1/bootstrap.proto'));
    for (const e of BOOTSTRAP_UNPINNED_ENUMS) ours.enums.delete(e);
    field(ours, `${BOOT}.BootstrapParams`, 'containerd_grpc_address').number = 9;
    field(ours, `${BOOT}.BootstrapResult`, 'capabilities').label = 'singular';
    assert.deepEqual(compareSchemas(ours, BOOTSTRAP_TABLE, NO_EXCEPTIONS), [
      `message ${BOOT}.BootstrapParams, field "containerd_grpc_address": number differs (ours 9, upstream 6)`,
      `message ${BOOT}.BootstrapResult, field "capabilities": label differs (ours singular, upstream repeated)`,
    ]);
  });
});

// ---------------------------------------------------------------------------
// Parser self-tests on synthetic input (independent of the installed packages).

describe('upstream .proto parser', () => {
  const MAIN = `/* header
   * spans lines */ syntax = "proto3";
package a.b;
import weak "gogoproto/gogo.proto"; // not present: weak imports may be missing
import "dep.proto";
option (gogoproto.goproto_getters_all) = false;
option (my.agg) = { key: "v;}" nested { x: 1 } };
message Outer {
  option (x.y) = true;
  reserved 5, 7 to 9;
  reserved "old";
  message Inner {
    enum Kind {
      option allow_alias = true;
      option (gogoproto.goproto_enum_prefix) = false;
      A = 0;
      B = 1 [(gogoproto.enumvalue_customname) = "KB"];
      C = 1;
    }
    Kind kind = 1;
  }
  Inner inner = 1 [(gogoproto.nullable) = false, json_name = "in"];
  repeated Inner.Kind kinds = 2 [packed = true];
  map<string, Inner> by_name = 3;
  oneof choice {
    option (o) = 1;
    string s = 4;
    dep.Thing t = 6;
  }
  // string commented = 99;
  /* int32 commented2 = 98; */
  .a.b.Outer self = 10;
  optional int64 opt = 11;
  Top top = 12;
  c.Shared shared = 13;
  map<int32, Inner.Kind> kind_by_id = 14;
  google.protobuf.Timestamp at = 15 [(gogoproto.stdtime) = true];
}
message Top { Outer.Inner x = 1; }
enum Top2 { NEG = -1; ZERO = 0x0; SEVEN = 07; }
extend google.protobuf.FieldOptions { optional bool ext = 65001; }
service S {
  option deprecated = true;
  rpc M(Outer) returns (stream Top) {}
  rpc N(stream .a.b.Top) returns (dep.Thing) { option idempotency_level = NO_SIDE_EFFECTS; };
  rpc E(Top) returns (google.protobuf.Timestamp);
}
`;
  const VFILES = {
    'main.proto': MAIN,
    'dep.proto': `syntax = "proto3"; package dep; import public "shared.proto"; import "google/protobuf/timestamp.proto"; message Thing {}`,
    'shared.proto': `syntax = "proto3"; package a.c; message Shared {}`,
    'google/protobuf/timestamp.proto': `syntax = "proto3"; package google.protobuf; message Timestamp { int64 seconds = 1; int32 nanos = 2; }`,
  };
  const mk = (files: Record<string, string>) => new ProtoLoader({ roots: [], virtualFiles: files });

  test('parses and resolves comments, options, nesting, maps, oneofs, enums, services', () => {
    const s = mk({
      ...VFILES,
      'main.proto': MAIN.replace(
        'import "dep.proto";',
        'import "dep.proto";\nimport "google/protobuf/timestamp.proto";',
      ),
    }).schemaOf('main.proto');
    const f = (
      name: string,
      number: number,
      type: string,
      label: FieldModel['label'] = 'singular',
      oneof?: string,
    ): FieldModel => (oneof ? { name, number, label, type, oneof } : { name, number, label, type });
    assert.deepEqual(s.messages.get('a.b.Outer')?.fields, [
      f('inner', 1, 'message a.b.Outer.Inner'),
      f('kinds', 2, 'enum a.b.Outer.Inner.Kind', 'repeated'),
      f('by_name', 3, 'map<string, message a.b.Outer.Inner>', 'map'),
      f('s', 4, 'string', 'singular', 'choice'),
      f('t', 6, 'message dep.Thing', 'singular', 'choice'),
      f('self', 10, 'message a.b.Outer'),
      f('opt', 11, 'int64'),
      f('top', 12, 'message a.b.Top'),
      f('shared', 13, 'message a.c.Shared'), // via dep.proto's `import public`
      f('kind_by_id', 14, 'map<int32, enum a.b.Outer.Inner.Kind>', 'map'),
      f('at', 15, 'message google.protobuf.Timestamp'),
    ]);
    assert.deepEqual(s.messages.get('a.b.Outer.Inner')?.fields, [f('kind', 1, 'enum a.b.Outer.Inner.Kind')]);
    assert.deepEqual(s.messages.get('a.b.Top')?.fields, [f('x', 1, 'message a.b.Outer.Inner')]);
    assert.deepEqual(s.enums.get('a.b.Outer.Inner.Kind')?.values, [
      { name: 'A', number: 0 },
      { name: 'B', number: 1 },
      { name: 'C', number: 1 },
    ]);
    assert.deepEqual(s.enums.get('a.b.Top2')?.values, [
      { name: 'NEG', number: -1 },
      { name: 'ZERO', number: 0 },
      { name: 'SEVEN', number: 7 },
    ]);
    assert.deepEqual(s.services.get('a.b.S')?.methods, [
      { name: 'M', input: 'a.b.Outer', output: 'a.b.Top', clientStreaming: false, serverStreaming: true },
      { name: 'N', input: 'a.b.Top', output: 'dep.Thing', clientStreaming: true, serverStreaming: false },
      {
        name: 'E',
        input: 'a.b.Top',
        output: 'google.protobuf.Timestamp',
        clientStreaming: false,
        serverStreaming: false,
      },
    ]);
  });

  test('only direct imports are visible; errors are explicit', () => {
    // google/protobuf/timestamp.proto is imported by dep.proto only (not public).
    assert.throws(() => mk(VFILES).schemaOf('main.proto'), /cannot resolve type google\.protobuf\.Timestamp/);
    assert.throws(
      () => mk({ 'x.proto': `syntax = "proto3"; import "nope.proto"; message X {}` }).schemaOf('x.proto'),
      /import not found: nope\.proto/,
    );
    assert.throws(
      () => mk({ 'x.proto': `syntax = "proto3"; package p; message X { Y y = 1; }` }).schemaOf('x.proto'),
      /cannot resolve type Y/,
    );
    assert.throws(
      () => mk({ 'x.proto': `syntax = "proto3"; package p; message X { p.Y y = 1; }` }).schemaOf('x.proto'),
      /resolved to p\.Y, which is not defined/,
    );
    assert.throws(() => parseProto(`message X { /* never closed`), ProtoSyntaxError);
    assert.throws(() => parseProto(`message X { string a = ; }`), /expected integer/);
    assert.throws(() => parseProto(`message X { string a = 1 }`), /expected ";"/);
  });

  test('Go protobuf struct tags: scalars, bytes, repeated, maps, enums, same-package messages', () => {
    const src = `package demo

import (
	"fmt"
)

type Inner struct {
	Key string \`protobuf:"bytes,1,opt,name=key,proto3"\`
}

type Outer struct {
	A   string            \`protobuf:"bytes,1,opt,name=a,proto3" json:"a,omitempty"\`
	B   []byte            \`protobuf:"bytes,2,opt,name=b,proto3"\`
	C   int64             \`protobuf:"varint,3,opt,name=c,proto3"\`
	D   []*Inner          \`protobuf:"bytes,4,rep,name=d,proto3"\`
	E   int32             \`protobuf:"zigzag32,5,opt,name=e,proto3"\`
	F   []uint64          \`protobuf:"varint,6,rep,packed,name=f,proto3"\`
	G   map[string]string \`protobuf:"bytes,7,rep,name=g,proto3" protobuf_key:"bytes,1,opt,name=key,proto3" protobuf_val:"bytes,2,opt,name=value,proto3"\`
	H   Status            \`protobuf:"varint,8,opt,name=h,proto3,enum=x.Status"\`
	I   float64           \`protobuf:"fixed64,9,opt,name=i,proto3"\`
	XXX_unrecognized []byte \`json:"-"\`
}

func (o *Outer) String() string { return fmt.Sprint(o.A) }
`;
    const s = parseGoProtoStructs('/nonexistent/demo/types.go', {
      goSrcRoot: '/nonexistent',
      protoPackage: 'demo',
      src,
    });
    assert.deepEqual(s.messages.get('demo.Inner')?.fields, [
      { name: 'key', number: 1, label: 'singular', type: 'string' },
    ]);
    assert.deepEqual(
      s.messages.get('demo.Outer')?.fields.map((f) => `${f.label} ${f.type} ${f.name} = ${f.number}`),
      [
        'singular string a = 1',
        'singular bytes b = 2',
        'singular int64 c = 3',
        'repeated message demo.Inner d = 4',
        'singular sint32 e = 5',
        'repeated uint64 f = 6',
        'map map<string, string> g = 7',
        'singular enum x.Status h = 8',
        'singular double i = 9',
      ],
    );
  });
});
