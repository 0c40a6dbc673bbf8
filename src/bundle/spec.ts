// The parts of the OCI runtime spec (config.json) the shim reads, and the
// checks that turn a bad bundle into one clear sentence.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LinuxResources } from '../host/cgroup.js';

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
  umask?: number;
}
export interface OciProcess {
  args: string[];
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  user?: OciUser;
}
export interface OciMount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
}
export interface OciSpec {
  process?: OciProcess;
  root?: { path?: string; readonly?: boolean };
  mounts?: OciMount[];
  annotations?: Record<string, string>;
  linux?: { resources?: LinuxResources; cgroupsPath?: string };
}

/** A bundle or spec the shim cannot run; the message names the cause. */
export class SpecError extends Error {}

const MAX_CONFIG_BYTES = 16 << 20;

export function readSpec(bundle: string): OciSpec {
  const file = path.join(bundle, 'config.json');
  let text: string;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_CONFIG_BYTES)
      throw new SpecError(`${file} is ${size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SpecError) throw err;
    throw new SpecError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SpecError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new SpecError(`${file} must hold a JSON object`);
  return raw as OciSpec;
}

/** Annotations only, for `start`: a bad config must not fail start (Create reports it). */
export function readAnnotations(bundle: string): Record<string, string> | undefined {
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as OciSpec;
    return isObject(spec?.annotations) ? spec.annotations : undefined;
  } catch {
    return undefined;
  }
}

/** linux.cgroupsPath only, for `delete`'s cleanup; undefined when unreadable. */
export function readCgroupsPath(bundle: string): string | undefined {
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as OciSpec;
    return typeof spec?.linux?.cgroupsPath === 'string' ? spec.linux.cgroupsPath : undefined;
  } catch {
    return undefined;
  }
}

export function checkProcess(proc: unknown, where: string): OciProcess {
  if (!isObject(proc)) throw new SpecError(`${where} has no "process" object`);
  const p = proc as Record<string, unknown>;
  if (!Array.isArray(p.args) || p.args.length === 0 || !p.args.every((a) => typeof a === 'string')) {
    throw new SpecError(`${where}: process.args must be a non-empty list of strings`);
  }
  if (p.env !== undefined && (!Array.isArray(p.env) || !p.env.every((e) => typeof e === 'string'))) {
    throw new SpecError(`${where}: process.env must be a list of strings`);
  }
  if (p.cwd !== undefined && (typeof p.cwd !== 'string' || !p.cwd.startsWith('/'))) {
    throw new SpecError(`${where}: process.cwd must be an absolute path`);
  }
  if (p.user !== undefined) {
    const u = p.user as Record<string, unknown>;
    if (!isObject(u) || !isId(u.uid) || !isId(u.gid))
      throw new SpecError(`${where}: process.user needs numeric uid and gid`);
    if (u.additionalGids !== undefined && (!Array.isArray(u.additionalGids) || !u.additionalGids.every(isId))) {
      throw new SpecError(`${where}: process.user.additionalGids must be numbers`);
    }
  }
  return p as unknown as OciProcess;
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
}

export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
