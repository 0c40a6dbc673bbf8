// Messages on the IPC channel between the daemon and a Wasm child, and their
// parsers: each side rebuilds what it receives from checked fields, never
// trusting the other's JSON to have the declared shape.
import * as path from 'node:path';
import { isId, isObject, isStringList } from '../bundle/index.js';
import type { ModuleJob, ModuleUser } from './job.js';
import type { SpanRecord } from '../telemetry/recorder.js';
import { parseSpanRecord } from '../telemetry/records.js';
import type { ChildTraceContext } from '../telemetry/propagation.js';
import type { ComponentCacheConfig } from './cache-config.js';

/** A job as it crosses IPC, with where the child keeps transpiled components. */
export type ChildJob = ModuleJob & { componentCache: ComponentCacheConfig };
export type { ComponentCacheConfig };

export type ToChild = { t: 'job'; job: ChildJob } | { t: 'run' };

export type FromChild =
  | { t: 'ready' }
  | { t: 'error'; message: string }
  /** Finished spans (compile, instantiate, run), for the daemon's exporter. */
  | { t: 'spans'; records: SpanRecord[] }
  /** wasm.run as it starts: the daemon ends it should the child be killed first. */
  | { t: 'span-open'; span: SpanRecord };

const isAbsolute = (v: unknown): v is string => typeof v === 'string' && path.isAbsolute(v);

const MAX_RECORDS_PER_MESSAGE = 256;
const MAX_ERROR_MESSAGE = 4096;

/** A message from a child, checked field by field; undefined for anything else. Invalid span records are left out. */
export function parseFromChild(raw: unknown): FromChild | undefined {
  if (!isObject(raw)) return undefined;
  const m = raw;
  switch (m.t) {
    case 'ready':
      return { t: 'ready' };
    case 'error':
      return {
        t: 'error',
        message: typeof m.message === 'string' ? m.message.slice(0, MAX_ERROR_MESSAGE) : 'the Wasm child failed',
      };
    case 'spans': {
      if (!Array.isArray(m.records)) return undefined;
      const records: SpanRecord[] = [];
      for (const r of m.records.slice(0, MAX_RECORDS_PER_MESSAGE)) {
        const rec = parseSpanRecord(r);
        if (rec?.process === 'child') records.push(rec);
      }
      return { t: 'spans', records };
    }
    case 'span-open': {
      const span = parseSpanRecord(m.span);
      return span?.process === 'child' ? { t: 'span-open', span } : undefined;
    }
    default:
      return undefined;
  }
}

/** A message from the daemon the child cannot use; the message names the field. */
export class ProtocolError extends Error {}

function bad(field: string, want: string): ProtocolError {
  return new ProtocolError(`job.${field} must be ${want}`);
}

function stringMap(v: unknown, field: string, valueOk: (s: string) => boolean = () => true): Record<string, string> {
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string' && valueOk(x)))
    throw bad(field, 'an object of strings');
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function user(v: unknown): ModuleUser {
  if (!isObject(v) || !isId(v.uid) || !isId(v.gid)) throw bad('user', 'numeric uid and gid');
  if (v.additionalGids === undefined) return { uid: v.uid, gid: v.gid };
  if (!Array.isArray(v.additionalGids) || !v.additionalGids.every(isId))
    throw bad('user.additionalGids', 'a list of ids');
  return { uid: v.uid, gid: v.gid, additionalGids: v.additionalGids };
}

function trace(v: unknown): ChildTraceContext {
  if (!isObject(v)) throw bad('trace', 'an object');
  const env = stringMap(v.env, 'trace.env');
  if (v.recordUnder === undefined) return { env };
  const r = v.recordUnder;
  if (
    !isObject(r) ||
    typeof r.traceparent !== 'string' ||
    (r.tracestate !== undefined && typeof r.tracestate !== 'string')
  )
    throw bad('trace.recordUnder', 'a traceparent and an optional tracestate');
  return {
    env,
    recordUnder: {
      traceparent: r.traceparent,
      ...(typeof r.tracestate === 'string' ? { tracestate: r.tracestate } : {}),
    },
  };
}

function componentCache(v: unknown): ComponentCacheConfig {
  if (!isObject(v) || !isAbsolute(v.dir) || typeof v.maxBytes !== 'number' || !Number.isSafeInteger(v.maxBytes))
    throw bad('componentCache', 'an absolute dir and a whole maxBytes');
  if (v.maxBytes <= 0) throw bad('componentCache.maxBytes', 'positive');
  return { dir: v.dir, maxBytes: v.maxBytes };
}

function parseJob(j: unknown): ChildJob {
  if (!isObject(j)) throw new ProtocolError('job must be an object');
  const text = (field: string): string => {
    const v = j[field];
    if (typeof v !== 'string') throw bad(field, 'a string');
    return v;
  };
  const strings = (field: string): string[] => {
    const v = j[field];
    if (!isStringList(v)) throw bad(field, 'a list of strings');
    return v;
  };
  const modulePath = text('modulePath');
  if (!path.isAbsolute(modulePath)) throw bad('modulePath', 'an absolute path');
  const exportName = text('exportName');
  if (!exportName) throw bad('exportName', 'a name');
  return {
    containerId: text('containerId'),
    execId: text('execId'),
    modulePath,
    exportName,
    args: strings('args'),
    env: strings('env'),
    preopens: stringMap(j.preopens, 'preopens', (dir) => path.isAbsolute(dir)),
    stdout: text('stdout'),
    stderr: text('stderr'),
    ...(j.user !== undefined ? { user: user(j.user) } : {}),
    ...(j.trace !== undefined ? { trace: trace(j.trace) } : {}),
    componentCache: componentCache(j.componentCache),
  };
}

/** A message from the daemon, rebuilt from checked fields; throws a ProtocolError naming the bad one. */
export function parseToChild(raw: unknown): ToChild {
  if (!isObject(raw)) throw new ProtocolError('a message must be an object');
  if (raw.t === 'run') return { t: 'run' };
  if (raw.t === 'job') return { t: 'job', job: parseJob(raw.job) };
  throw new ProtocolError(`unknown message type ${JSON.stringify(raw.t) ?? 'undefined'}`);
}

/** Exit status of a module that trapped: 128 + SIGABRT, as wasmtime reports it. */
export const TRAP_EXIT_STATUS = 134;
/** Exit status when the child could not even prepare the module. */
export const SETUP_EXIT_STATUS = 125;
