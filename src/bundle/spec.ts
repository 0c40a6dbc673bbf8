// The parts of the OCI runtime spec (config.json) the shim reads, built field
// by field into typed values: a bad bundle becomes one clear sentence naming
// the file and the field. Fields the shim does not read are ignored.
import * as fs from 'node:fs';
import { configPath } from './files.js';
import {
  child,
  isId,
  isObject,
  isStringList,
  optionalBoolean,
  optionalObject,
  optionalString,
  optionalStringList,
  refuse,
  SpecError,
  type Field,
  type JsonObject,
} from './fields.js';
import { parseLinuxResources, type LinuxResources } from './resources.js';

export { SpecError };

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}
export interface OciProcess {
  args: string[];
  env?: string[];
  cwd?: string;
  user?: OciUser;
}
export interface OciMount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
}
export interface OciSpec {
  process: OciProcess;
  root?: { path?: string; readonly?: boolean };
  mounts?: OciMount[];
  annotations?: Record<string, string>;
  linux?: { resources?: LinuxResources; cgroupsPath?: string };
}

const MAX_CONFIG_BYTES = 16 << 20;

/** The text of config.json, refused when unreadable or over the size limit. */
function readConfigText(bundle: string): string {
  const file = configPath(bundle);
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_CONFIG_BYTES)
      throw new SpecError(`${file} is ${size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit`);
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SpecError) throw err;
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new SpecError(`cannot read ${file}: ${reason}`, { cause: err });
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SpecError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** The bundle's config.json, parsed and checked; throws a SpecError naming the cause. */
export function readSpec(bundle: string): OciSpec {
  const file = configPath(bundle);
  return parseSpec(parseJson(readConfigText(bundle), file), file);
}

/** A spec from any JSON value; `where` (the file) starts every message. */
export function parseSpec(raw: unknown, where: string): OciSpec {
  if (!isObject(raw)) throw new SpecError(`${where} must hold a JSON object`);
  const at = (name: string): Field => ({ where, name });
  const spec: OciSpec = { process: checkProcess(raw.process, where) };
  const root = optionalObject(raw.root, at('root'));
  if (root) {
    const path = optionalString(root.path, at('root.path'));
    const readonly = optionalBoolean(root.readonly, at('root.readonly'));
    spec.root = { ...(path !== undefined ? { path } : {}), ...(readonly !== undefined ? { readonly } : {}) };
  }
  if (raw.mounts !== undefined) {
    if (!Array.isArray(raw.mounts)) throw refuse(at('mounts'), 'must be a list of objects');
    const mounts: unknown[] = raw.mounts;
    spec.mounts = mounts.map((m, i) => parseMount(m, child(at('mounts'), i)));
  }
  if (raw.annotations !== undefined) spec.annotations = parseAnnotations(raw.annotations, at('annotations'));
  const linux = optionalObject(raw.linux, at('linux'));
  if (linux) {
    const cgroupsPath = optionalString(linux.cgroupsPath, at('linux.cgroupsPath'));
    spec.linux = {
      ...(linux.resources !== undefined
        ? { resources: parseLinuxResources(linux.resources, at('linux.resources')) }
        : {}),
      ...(cgroupsPath !== undefined ? { cgroupsPath } : {}),
    };
  }
  return spec;
}

function parseMount(raw: unknown, field: Field): OciMount {
  const m = optionalObject(raw, field);
  if (!m) throw refuse(field, 'must be an object');
  if (typeof m.destination !== 'string') throw refuse(child(field, 'destination'), 'must be a string');
  const source = optionalString(m.source, child(field, 'source'));
  const type = optionalString(m.type, child(field, 'type'));
  const options = optionalStringList(m.options, child(field, 'options'));
  return {
    destination: m.destination,
    ...(source !== undefined ? { source } : {}),
    ...(type !== undefined ? { type } : {}),
    ...(options !== undefined ? { options } : {}),
  };
}

function parseAnnotations(raw: unknown, field: Field): Record<string, string> {
  if (!isObject(raw) || !Object.values(raw).every((v) => typeof v === 'string'))
    throw refuse(field, 'must map strings to strings');
  return stringEntries(raw);
}

/** The string-valued entries, as own properties (a "__proto__" key stays a key). */
function stringEntries(o: JsonObject): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** The process of a spec (config.json's, or an Exec's); `where` starts every message. */
export function checkProcess(proc: unknown, where: string): OciProcess {
  if (!isObject(proc)) throw new SpecError(`${where} has no "process" object`);
  const p: JsonObject = proc;
  if (!isStringList(p.args) || p.args.length === 0)
    throw new SpecError(`${where}: process.args must be a non-empty list of strings`);
  const out: OciProcess = { args: p.args };
  if (p.env !== undefined) {
    if (!isStringList(p.env)) throw new SpecError(`${where}: process.env must be a list of strings`);
    out.env = p.env;
  }
  if (p.cwd !== undefined) {
    if (typeof p.cwd !== 'string' || !p.cwd.startsWith('/'))
      throw new SpecError(`${where}: process.cwd must be an absolute path`);
    out.cwd = p.cwd;
  }
  if (p.user !== undefined) out.user = checkUser(p.user, where);
  return out;
}

function checkUser(u: unknown, where: string): OciUser {
  if (!isObject(u) || !isId(u.uid) || !isId(u.gid))
    throw new SpecError(`${where}: process.user needs numeric uid and gid`);
  const user: OciUser = { uid: u.uid, gid: u.gid };
  if (u.additionalGids !== undefined) {
    if (!Array.isArray(u.additionalGids) || !u.additionalGids.every(isId))
      throw new SpecError(`${where}: process.user.additionalGids must be numbers`);
    user.additionalGids = u.additionalGids;
  }
  return user;
}

/**
 * Annotations only, for `start`: a bad config must not fail start (Create
 * reports it); annotations that are not strings are left out.
 */
export function readAnnotations(bundle: string): Record<string, string> | undefined {
  try {
    return annotationsIn(JSON.parse(fs.readFileSync(configPath(bundle), 'utf8')));
  } catch {
    return undefined;
  }
}

/** readAnnotations without blocking the daemon (its tracing reads the image name). */
export async function readAnnotationsAsync(bundle: string): Promise<Record<string, string> | undefined> {
  try {
    return annotationsIn(JSON.parse(await fs.promises.readFile(configPath(bundle), 'utf8')));
  } catch {
    return undefined;
  }
}

function annotationsIn(spec: unknown): Record<string, string> | undefined {
  if (!isObject(spec) || !isObject(spec.annotations)) return undefined;
  return stringEntries(spec.annotations);
}

/** linux.cgroupsPath only, for `delete`'s cleanup; undefined when unreadable. */
export function readCgroupsPath(bundle: string): string | undefined {
  try {
    const spec: unknown = JSON.parse(fs.readFileSync(configPath(bundle), 'utf8'));
    const linux = isObject(spec) && isObject(spec.linux) ? spec.linux : undefined;
    return typeof linux?.cgroupsPath === 'string' ? linux.cgroupsPath : undefined;
  } catch {
    return undefined;
  }
}

/** CRI marks the sandbox container with this annotation. */
export const CONTAINER_TYPE_ANNOTATION = 'io.kubernetes.cri.container-type';
