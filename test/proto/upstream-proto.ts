// A small, dependency-free reader for upstream wire contracts, used by
// test/proto/descriptors.test.ts:
//
//  - a .proto parser (proto2/proto3 syntax subset that real-world files use:
//    // and /* */ comments, options in [...] and `option ...;` including
//    gogoproto ones and aggregate values, `import weak|public`, nested
//    messages and enums, map<K, V>, repeated/optional/required, oneof,
//    reserved/extensions/extend, enums with options, services with rpc lines
//    (with or without an option body, with or without `stream`));
//  - a resolver that turns relative type names into full names following
//    protoc's scoping rules, using the file's package and its imports;
//  - a reader for Go structs carrying `protobuf:"..."` struct tags (ttrpc
//    defines Request/Response/KeyValue that way, with no .proto).
//
// Everything is normalised into a SchemaModel that the test also builds from
// our generated protobuf-es descriptors, so both sides compare 1:1.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

// ---------------------------------------------------------------------------
// Normalised model shared by both sides of the comparison.

export type Label = 'singular' | 'repeated' | 'map';

export interface FieldModel {
  name: string;
  number: number;
  label: Label;
  /**
   * Canonical type: a scalar keyword ("uint32"), "message <full.Name>",
   * "enum <full.Name>", or for maps "map<keyScalar, valueType>" where
   * valueType is one of the former.
   */
  type: string;
  /** Name of the (non-synthetic) oneof this field belongs to. */
  oneof?: string;
}

export interface MessageModel {
  fullName: string;
  fields: FieldModel[];
}

export interface EnumValueModel {
  name: string;
  number: number;
}

export interface EnumModel {
  fullName: string;
  values: EnumValueModel[];
}

export interface MethodModel {
  name: string;
  input: string;
  output: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

export interface ServiceModel {
  fullName: string;
  methods: MethodModel[];
}

export interface SchemaModel {
  messages: Map<string, MessageModel>;
  enums: Map<string, EnumModel>;
  services: Map<string, ServiceModel>;
}

export function emptySchema(): SchemaModel {
  return { messages: new Map(), enums: new Map(), services: new Map() };
}

export const SCALAR_TYPES: ReadonlySet<string> = new Set([
  'double',
  'float',
  'int32',
  'int64',
  'uint32',
  'uint64',
  'sint32',
  'sint64',
  'fixed32',
  'fixed64',
  'sfixed32',
  'sfixed64',
  'bool',
  'string',
  'bytes',
]);

// ---------------------------------------------------------------------------
// Tokenizer.

interface Token {
  kind: 'ident' | 'number' | 'string' | 'sym';
  text: string;
  line: number;
}

export class ProtoSyntaxError extends Error {}

function tokenize(src: string, file: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  let line = 1;
  const n = src.length;
  const fail = (msg: string): never => {
    throw new ProtoSyntaxError(`${file}:${line}: ${msg}`);
  };
  while (i < n) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated /* comment');
      for (let j = i; j < end; j++) if (src[j] === '\n') line++;
      i = end + 2;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let out = '';
      while (j < n && src[j] !== c) {
        if (src[j] === '\n') fail('newline in string literal');
        if (src[j] === '\\') {
          out += src[j + 1] ?? '';
          j += 2;
          continue;
        }
        out += src[j];
        j++;
      }
      if (j >= n) fail('unterminated string literal');
      toks.push({ kind: 'string', text: out, line });
      i = j + 1;
      continue;
    }
    const rest = src.slice(i, i + 200);
    const num = /^(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)/.exec(
      rest,
    );
    if (num) {
      toks.push({ kind: 'number', text: num[0], line });
      i += num[0].length;
      continue;
    }
    // Identifiers, possibly dotted and/or fully qualified (leading dot).
    // (Whitespace around the dots, legal but unseen in practice, is not
    // supported: `stream .a.B` must stay two tokens.)
    const id = /^\.?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(rest);
    if (id) {
      toks.push({ kind: 'ident', text: id[0], line });
      i += id[0].length;
      continue;
    }
    if ('{}[]()<>;=,:-+.'.includes(c)) {
      toks.push({ kind: 'sym', text: c, line });
      i++;
      continue;
    }
    fail(`unexpected character ${JSON.stringify(c)}`);
  }
  return toks;
}

function parseIntLiteral(text: string): number {
  if (/^0[xX]/.test(text)) return parseInt(text.slice(2), 16);
  if (/^0[0-7]+$/.test(text)) return parseInt(text, 8);
  if (!/^[0-9]+$/.test(text)) return NaN;
  return parseInt(text, 10);
}

// ---------------------------------------------------------------------------
// Parser: produces unresolved declarations.

export interface RawField {
  name: string;
  number: number;
  label: Label;
  /** Raw type as written (scalar keyword or relative/absolute type name). */
  type: string;
  /** Raw map key type, for map fields. */
  keyType?: string;
  oneof?: string;
  line: number;
}

export interface RawMessage {
  fullName: string;
  fields: RawField[];
}

export interface RawService {
  fullName: string;
  methods: {
    name: string;
    input: string;
    output: string;
    clientStreaming: boolean;
    serverStreaming: boolean;
    line: number;
  }[];
}

export interface ParsedProto {
  file: string;
  syntax: string;
  package: string;
  imports: { path: string; modifier: 'weak' | 'public' | '' }[];
  /** All messages, nested ones flattened, with full names. */
  messages: RawMessage[];
  /** All enums, nested ones flattened, with full names. */
  enums: EnumModel[];
  services: RawService[];
}

class Parser {
  private pos = 0;
  private readonly toks: Token[];
  readonly out: ParsedProto;

  constructor(
    src: string,
    private readonly file: string,
  ) {
    this.toks = tokenize(src, file);
    this.out = { file, syntax: 'proto2', package: '', imports: [], messages: [], enums: [], services: [] };
  }

  private fail(msg: string, tok: Token | undefined = this.toks[this.pos]): never {
    const where = tok ? `${this.file}:${tok.line}` : `${this.file}:EOF`;
    throw new ProtoSyntaxError(`${where}: ${msg}${tok ? ` (at ${JSON.stringify(tok.text)})` : ''}`);
  }
  private peek(off = 0): Token | undefined {
    return this.toks[this.pos + off];
  }
  private next(): Token {
    const t = this.toks[this.pos];
    if (!t) this.fail('unexpected end of file');
    this.pos++;
    return t;
  }
  private is(text: string, off = 0): boolean {
    const t = this.peek(off);
    return t !== undefined && (t.kind === 'sym' || t.kind === 'ident') && t.text === text;
  }
  private expect(text: string): Token {
    const t = this.next();
    if (t.text !== text || t.kind === 'string') this.fail(`expected ${JSON.stringify(text)}`, t);
    return t;
  }
  private ident(): string {
    const t = this.next();
    if (t.kind !== 'ident') this.fail('expected identifier', t);
    return t.text;
  }
  private str(): string {
    const t = this.next();
    if (t.kind !== 'string') this.fail('expected string literal', t);
    let s = t.text;
    while (this.peek()?.kind === 'string') s += this.next().text; // adjacent literals
    return s;
  }
  private int(): number {
    let neg = false;
    if (this.is('-')) {
      this.next();
      neg = true;
    } else if (this.is('+')) this.next();
    const t = this.next();
    const v = t.kind === 'number' ? parseIntLiteral(t.text) : t.kind === 'ident' && t.text === 'max' ? 536870911 : NaN;
    if (!Number.isFinite(v)) this.fail('expected integer', t);
    return neg ? -v : v;
  }
  /** Skip tokens up to and including `;` at nesting depth 0. */
  private skipStatement(): void {
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.kind === 'sym') {
        if (t.text === '{' || t.text === '[' || t.text === '(') depth++;
        else if (t.text === '}' || t.text === ']' || t.text === ')') depth--;
        else if (t.text === ';' && depth === 0) return;
        if (depth < 0) this.fail('unbalanced brackets', t);
      }
    }
  }
  /** Skip a balanced group starting at the current `open` token. */
  private skipBalanced(open: string, close: string): void {
    this.expect(open);
    let depth = 1;
    while (depth > 0) {
      const t = this.next();
      if (t.kind !== 'sym') continue;
      if (t.text === open) depth++;
      else if (t.text === close) depth--;
    }
  }

  parse(): ParsedProto {
    while (this.pos < this.toks.length) {
      const t = this.peek()!;
      if (this.is(';')) {
        this.next();
        continue;
      }
      if (t.kind !== 'ident') this.fail('unexpected token at top level', t);
      switch (t.text) {
        case 'syntax':
        case 'edition':
          this.next();
          this.expect('=');
          this.out.syntax = this.str();
          this.expect(';');
          break;
        case 'package':
          this.next();
          this.out.package = this.ident().replace(/^\./, '');
          this.expect(';');
          break;
        case 'import': {
          this.next();
          let modifier: 'weak' | 'public' | '' = '';
          if (this.is('weak') || this.is('public')) modifier = this.next().text as 'weak' | 'public';
          this.out.imports.push({ path: this.str(), modifier });
          this.expect(';');
          break;
        }
        case 'option':
          this.skipStatement();
          break;
        case 'message':
          this.parseMessage(this.out.package);
          break;
        case 'enum':
          this.parseEnum(this.out.package);
          break;
        case 'service':
          this.parseService();
          break;
        case 'extend':
          this.next();
          this.ident();
          this.skipBalanced('{', '}');
          break;
        default:
          this.fail('unexpected top-level statement', t);
      }
    }
    return this.out;
  }

  private qualify(scope: string, name: string): string {
    return scope ? `${scope}.${name}` : name;
  }

  private parseMessage(scope: string): void {
    this.expect('message');
    const fullName = this.qualify(scope, this.ident());
    const msg: RawMessage = { fullName, fields: [] };
    this.out.messages.push(msg);
    this.expect('{');
    while (!this.is('}')) {
      const t = this.peek();
      if (!t) this.fail('unterminated message ' + fullName);
      if (this.is(';')) {
        this.next();
        continue;
      }
      if (t.kind === 'ident') {
        // Keyword statements (protoc, too, treats these as keywords here).
        if (t.text === 'message' && this.peek(2)?.text === '{') {
          this.parseMessage(fullName);
          continue;
        }
        if (t.text === 'enum' && this.peek(2)?.text === '{') {
          this.parseEnum(fullName);
          continue;
        }
        if (t.text === 'option' || t.text === 'reserved' || t.text === 'extensions') {
          this.skipStatement();
          continue;
        }
        if (t.text === 'extend') {
          this.next();
          this.ident();
          this.skipBalanced('{', '}');
          continue;
        }
        if (t.text === 'oneof') {
          this.parseOneof(msg);
          continue;
        }
      }
      this.parseField(msg, undefined);
    }
    this.expect('}');
  }

  private parseOneof(msg: RawMessage): void {
    this.expect('oneof');
    const name = this.ident();
    this.expect('{');
    while (!this.is('}')) {
      if (this.is(';')) {
        this.next();
        continue;
      }
      if (this.is('option')) {
        this.skipStatement();
        continue;
      }
      this.parseField(msg, name);
    }
    this.expect('}');
  }

  private parseField(msg: RawMessage, oneof: string | undefined): void {
    const first = this.peek()!;
    let label: Label = 'singular';
    let keyType: string | undefined;
    let type: string;
    if (this.is('map') && this.is('<', 1)) {
      this.next();
      this.expect('<');
      keyType = this.ident();
      this.expect(',');
      type = this.ident();
      this.expect('>');
      label = 'map';
    } else {
      if (this.is('repeated')) {
        this.next();
        label = 'repeated';
      } else if (this.is('optional') || this.is('required')) this.next();
      type = this.ident();
      if (type === 'group') this.fail('proto2 groups are not supported', first);
    }
    const name = this.ident();
    this.expect('=');
    const number = this.int();
    if (this.is('[')) this.skipBalanced('[', ']');
    this.expect(';');
    const f: RawField = { name, number, label, type, line: first.line };
    if (keyType !== undefined) f.keyType = keyType;
    if (oneof !== undefined) {
      if (label !== 'singular') this.fail(`oneof field ${name} cannot be ${label}`, first);
      f.oneof = oneof;
    }
    msg.fields.push(f);
  }

  private parseEnum(scope: string): void {
    this.expect('enum');
    const fullName = this.qualify(scope, this.ident());
    const e: EnumModel = { fullName, values: [] };
    this.out.enums.push(e);
    this.expect('{');
    while (!this.is('}')) {
      if (!this.peek()) this.fail('unterminated enum ' + fullName);
      if (this.is(';')) {
        this.next();
        continue;
      }
      if ((this.is('option') || this.is('reserved')) && !this.is('=', 1)) {
        this.skipStatement();
        continue;
      }
      const name = this.ident();
      this.expect('=');
      const number = this.int();
      if (this.is('[')) this.skipBalanced('[', ']');
      this.expect(';');
      e.values.push({ name, number });
    }
    this.expect('}');
  }

  private parseService(): void {
    this.expect('service');
    const svc: RawService = { fullName: this.qualify(this.out.package, this.ident()), methods: [] };
    this.out.services.push(svc);
    this.expect('{');
    while (!this.is('}')) {
      if (!this.peek()) this.fail('unterminated service ' + svc.fullName);
      if (this.is(';')) {
        this.next();
        continue;
      }
      if (this.is('option')) {
        this.skipStatement();
        continue;
      }
      const line = this.expect('rpc').line;
      const name = this.ident();
      const arg = (): [string, boolean] => {
        this.expect('(');
        let stream = false;
        if (this.is('stream') && !this.is(')', 1)) {
          this.next();
          stream = true;
        }
        const type = this.ident();
        this.expect(')');
        return [type, stream];
      };
      const [input, clientStreaming] = arg();
      this.expect('returns');
      const [output, serverStreaming] = arg();
      if (this.is('{')) this.skipBalanced('{', '}');
      else this.expect(';');
      svc.methods.push({ name, input, output, clientStreaming, serverStreaming, line });
    }
    this.expect('}');
  }
}

export function parseProto(src: string, file = '<input>'): ParsedProto {
  return new Parser(src, file).parse();
}

// ---------------------------------------------------------------------------
// Loader + resolver.

export interface LoaderOptions {
  /** Import roots, searched in order (like protoc -I). */
  roots: string[];
  /** In-memory files by import path; searched before the roots. */
  virtualFiles?: Record<string, string>;
}

export class ProtoLoader {
  private readonly cache = new Map<string, ParsedProto>();

  constructor(private readonly opts: LoaderOptions) {}

  /** Locate an import path; returns a key usable with load(), or undefined. */
  find(importPath: string): string | undefined {
    if (this.opts.virtualFiles && importPath in this.opts.virtualFiles) return `virtual:${importPath}`;
    if (importPath.startsWith('/') && existsSync(importPath)) return importPath;
    for (const root of this.opts.roots) {
      const p = join(root, importPath);
      if (existsSync(p)) return p;
    }
    return undefined;
  }

  load(key: string): ParsedProto {
    let parsed = this.cache.get(key);
    if (!parsed) {
      const src = key.startsWith('virtual:')
        ? this.opts.virtualFiles![key.slice('virtual:'.length)]
        : readFileSync(key, 'utf8');
      parsed = parseProto(src, key);
      this.cache.set(key, parsed);
    }
    return parsed;
  }

  /** Parse a file and resolve every type reference in it to a full name. */
  schemaOf(importPathOrAbs: string): SchemaModel {
    const key = this.find(importPathOrAbs);
    if (!key) throw new Error(`proto file not found: ${importPathOrAbs} (roots: ${this.opts.roots.join(', ')})`);
    const file = this.load(key);

    // Visible symbols: this file, its direct imports, and whatever those
    // re-export through `import public` (transitively).
    const kinds = new Map<string, 'message' | 'enum'>();
    const packages = new Set<string>();
    const visited = new Set<string>();
    const addFile = (f: ParsedProto, viaKey: string): void => {
      if (visited.has(viaKey)) return;
      visited.add(viaKey);
      for (const m of f.messages) kinds.set(m.fullName, 'message');
      for (const e of f.enums) kinds.set(e.fullName, 'enum');
      const parts = f.package ? f.package.split('.') : [];
      for (let i = 1; i <= parts.length; i++) packages.add(parts.slice(0, i).join('.'));
      for (const imp of f.imports) {
        if (imp.modifier !== 'public') continue;
        const k = this.find(imp.path);
        if (!k) throw new Error(`${f.file}: public import not found: ${imp.path}`);
        addFile(this.load(k), k);
      }
    };
    addFile(file, key);
    for (const imp of file.imports) {
      const k = this.find(imp.path);
      if (!k) {
        // Weak imports only carry options (gogoproto, fieldpath); a missing
        // weak import cannot affect type resolution.
        if (imp.modifier === 'weak') continue;
        throw new Error(`${file.file}: import not found: ${imp.path} (roots: ${this.opts.roots.join(', ')})`);
      }
      addFile(this.load(k), k);
    }

    const resolve = (raw: string, scope: string, where: string): { full: string; kind: 'message' | 'enum' } => {
      const found = (full: string) => {
        const kind = kinds.get(full);
        return kind ? { full, kind } : undefined;
      };
      if (raw.startsWith('.')) {
        const r = found(raw.slice(1));
        if (!r) throw new Error(`${where}: unknown type ${raw}`);
        return r;
      }
      const parts = raw.split('.');
      const firstPart = parts[0];
      const scopeParts = scope ? scope.split('.') : [];
      for (let i = scopeParts.length; i >= 0; i--) {
        const prefix = scopeParts.slice(0, i).join('.');
        const cand = prefix ? `${prefix}.${firstPart}` : firstPart;
        if (parts.length === 1) {
          const r = found(cand);
          if (r) return r;
          continue;
        }
        // Compound name: the first component must name an aggregate
        // (message or package); once it does, the rest must resolve there.
        if (kinds.get(cand) === 'message' || packages.has(cand)) {
          const full = `${cand}.${parts.slice(1).join('.')}`;
          const r = found(full);
          if (!r) throw new Error(`${where}: type ${raw} resolved to ${full}, which is not defined`);
          return r;
        }
      }
      throw new Error(`${where}: cannot resolve type ${raw} from scope ${scope || '<root>'}`);
    };

    const schema = emptySchema();
    for (const m of file.messages) {
      const fields = m.fields.map((f): FieldModel => {
        const where = `${file.file}:${f.line}: ${m.fullName}.${f.name}`;
        const typeOf = (raw: string): string => {
          if (SCALAR_TYPES.has(raw)) return raw;
          const r = resolve(raw, m.fullName, where);
          return `${r.kind} ${r.full}`;
        };
        let type: string;
        if (f.label === 'map') {
          if (!f.keyType || !SCALAR_TYPES.has(f.keyType) || ['double', 'float', 'bytes'].includes(f.keyType)) {
            throw new Error(`${where}: invalid map key type ${f.keyType}`);
          }
          type = `map<${f.keyType}, ${typeOf(f.type)}>`;
        } else {
          type = typeOf(f.type);
        }
        const out: FieldModel = { name: f.name, number: f.number, label: f.label, type };
        if (f.oneof !== undefined) out.oneof = f.oneof;
        return out;
      });
      schema.messages.set(m.fullName, { fullName: m.fullName, fields });
    }
    for (const e of file.enums)
      schema.enums.set(e.fullName, { fullName: e.fullName, values: e.values.map((v) => ({ ...v })) });
    for (const s of file.services) {
      const pkg = file.package;
      schema.services.set(s.fullName, {
        fullName: s.fullName,
        methods: s.methods.map((m) => {
          const where = `${file.file}:${m.line}: ${s.fullName}.${m.name}`;
          const io = (raw: string): string => {
            const r = resolve(raw, pkg, where);
            if (r.kind !== 'message') throw new Error(`${where}: rpc type ${raw} is not a message`);
            return r.full;
          };
          return {
            name: m.name,
            input: io(m.input),
            output: io(m.output),
            clientStreaming: m.clientStreaming,
            serverStreaming: m.serverStreaming,
          };
        }),
      });
    }
    return schema;
  }
}

// ---------------------------------------------------------------------------
// Go structs with protobuf struct tags (e.g. ttrpc/types.go).

export interface GoStructOptions {
  /** Root of a GOPATH-style tree (…/gocode/src) to look up imported Go packages. */
  goSrcRoot: string;
  /**
   * Proto package for structs in this file that have no registration
   * (`proto.RegisterType((*T)(nil), "full.Name")`) anywhere in their Go
   * package directory.
   */
  protoPackage: string;
  /** File contents, if not to be read from `path`. */
  src?: string;
}

/** Collect `proto.RegisterType((*T)(nil), "full.Name")` from a Go package directory. */
function goRegisteredNames(dir: string): Map<string, string> {
  const names = new Map<string, string>();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return names;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.go') || f.endsWith('_test.go')) continue;
    const src = readFileSync(join(dir, f), 'utf8');
    for (const m of src.matchAll(/RegisterType\(\(\*(\w+)\)\(nil\),\s*"([\w.]+)"\)/g)) names.set(m[1], m[2]);
  }
  return names;
}

function parseGoImports(src: string): Map<string, string> {
  const imports = new Map<string, string>();
  const add = (alias: string | undefined, path: string) => {
    const a = alias ?? path.split('/').pop()!;
    if (a !== '_' && a !== '.') imports.set(a, path);
  };
  for (const block of src.matchAll(/^import\s*\(([\s\S]*?)^\)/gm)) {
    for (const line of block[1].matchAll(/^\s*(?:(\w+|_|\.)\s+)?"([^"]+)"/gm)) add(line[1], line[2]);
  }
  for (const single of src.matchAll(/^import\s+(?:(\w+|_|\.)\s+)?"([^"]+)"/gm)) add(single[1], single[2]);
  return imports;
}

const GO_SCALARS: Record<string, Record<string, string>> = {
  varint: { bool: 'bool', int32: 'int32', int64: 'int64', uint32: 'uint32', uint64: 'uint64' },
  zigzag32: { int32: 'sint32' },
  zigzag64: { int64: 'sint64' },
  fixed32: { uint32: 'fixed32', int32: 'sfixed32', float32: 'float' },
  fixed64: { uint64: 'fixed64', int64: 'sfixed64', float64: 'double' },
  bytes: { string: 'string', '[]byte': 'bytes' },
};

/**
 * Read Go struct declarations whose fields carry protobuf struct tags and
 * return them as messages. `path` is the Go file; its directory is searched
 * for same-package registrations.
 */
export function parseGoProtoStructs(path: string, opts: GoStructOptions): SchemaModel {
  const src = opts.src ?? readFileSync(path, 'utf8');
  const goImports = parseGoImports(src);
  const dir = path.replace(/\/[^/]+$/, '');
  const localNames = goRegisteredNames(dir);
  const foreignNames = new Map<string, Map<string, string>>();
  const structNames = new Set([...src.matchAll(/^type\s+(\w+)\s+struct\s*\{/gm)].map((m) => m[1]));
  const schema = emptySchema();

  const messageName = (goType: string, where: string): string => {
    const q = /^(\w+)\.(\w+)$/.exec(goType);
    if (q) {
      const importPath = goImports.get(q[1]);
      if (!importPath) throw new Error(`${where}: unknown Go package alias ${q[1]}`);
      let names = foreignNames.get(importPath);
      if (!names) {
        names = goRegisteredNames(join(opts.goSrcRoot, importPath));
        foreignNames.set(importPath, names);
      }
      const full = names.get(q[2]);
      if (!full) throw new Error(`${where}: no proto.RegisterType for ${q[2]} in ${join(opts.goSrcRoot, importPath)}`);
      return full;
    }
    if (!/^\w+$/.test(goType)) throw new Error(`${where}: unsupported Go type ${goType}`);
    const registered = localNames.get(goType);
    if (registered) return registered;
    if (!structNames.has(goType))
      throw new Error(`${where}: Go type ${goType} is neither registered nor a struct in ${path}`);
    return `${opts.protoPackage}.${goType}`;
  };

  const elemType = (tag: string, goType: string, where: string): string => {
    const parts = tag.split(',');
    const wire = parts[0];
    const enumOpt = parts.find((p) => p.startsWith('enum='));
    if (enumOpt) return `enum ${enumOpt.slice(5)}`;
    const scalar = GO_SCALARS[wire]?.[goType];
    if (scalar) return scalar;
    if (wire === 'bytes') return `message ${messageName(goType.replace(/^\*/, ''), where)}`;
    throw new Error(`${where}: cannot map wire type ${wire} with Go type ${goType}`);
  };

  for (const m of src.matchAll(/^type\s+(\w+)\s+struct\s*\{([\s\S]*?)^\}/gm)) {
    const structName = m[1];
    const fields: FieldModel[] = [];
    let tagged = false;
    for (const line of m[2].split('\n')) {
      const fm = /^\s*(\w+)\s+(\S+)\s+`([^`]*)`/.exec(line);
      if (!fm) continue;
      const [, goName, goTypeRaw, tags] = fm as unknown as [string, string, string, string];
      const where = `${path}: ${structName}.${goName}`;
      if (/protobuf_oneof:/.test(tags)) throw new Error(`${where}: oneof struct fields are not supported`);
      const tag = /(?:^|\s)protobuf:"([^"]*)"/.exec(tags)?.[1];
      if (!tag) continue;
      tagged = true;
      const parts = tag.split(',');
      const number = parseInt(parts[1] ?? '', 10);
      const card = parts[2];
      const name = parts.find((p) => p.startsWith('name='))?.slice(5);
      if (!Number.isFinite(number) || !name || !card) throw new Error(`${where}: malformed protobuf tag ${tag}`);
      const mapType = /^map\[([^\]]+)\](.+)$/.exec(goTypeRaw);
      let label: Label;
      let type: string;
      if (mapType) {
        const keyTag = /protobuf_key:"([^"]*)"/.exec(tags)?.[1];
        const valTag = /protobuf_val:"([^"]*)"/.exec(tags)?.[1];
        if (!keyTag || !valTag) throw new Error(`${where}: map field without protobuf_key/protobuf_val tags`);
        label = 'map';
        type = `map<${elemType(keyTag, mapType[1], where)}, ${elemType(valTag, mapType[2], where)}>`;
      } else if (card === 'rep') {
        label = 'repeated';
        type = elemType(tag, goTypeRaw.replace(/^\[\]/, ''), where);
      } else {
        label = 'singular';
        type = elemType(tag, goTypeRaw, where);
      }
      fields.push({ name, number, label, type });
    }
    if (tagged) {
      const fullName = `${opts.protoPackage}.${structName}`;
      schema.messages.set(fullName, { fullName, fields });
    }
  }
  return schema;
}
