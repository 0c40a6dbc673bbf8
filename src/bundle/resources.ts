// The OCI LinuxResources the shim applies to a container's cgroup (see
// src/host/cgroup.ts), from config.json's linux.resources or the Update RPC,
// checked field by field and range by range before any reaches a cgroup file.
// Fields the shim does not apply (devices, blockIO, cpus, ...) are ignored.
import {
  child,
  isObject,
  optionalInteger,
  optionalObject,
  refuse,
  SpecError,
  type Field,
  type JsonObject,
} from './fields.js';

export interface LinuxResources {
  /** limit: bytes; -1 lifts the limit, 0 leaves it as it is. */
  memory?: { limit?: number };
  /** shares: relative weight (0 = unchanged); quota and period: µs per period, quota -1 = no limit. */
  cpu?: { shares?: number; quota?: number; period?: number };
  /** limit: tasks; -1 lifts the limit, 0 leaves it as it is. */
  pids?: { limit?: number };
}

/** The type containerd packs LinuxResources as (typeurl's registration; any domain before it). */
const LINUX_RESOURCES_TYPE = '/opencontainers/runtime-spec/1/LinuxResources';

const INT64_MAX = 2 ** 63;
const MAX_SHARES = 262_144; // the kernel's (and runc's) bound on cpu.shares
const MIN_CFS_US = 1_000; // the kernel's bounds on a CFS period and quota
const MAX_PERIOD_US = 1_000_000;

/** LinuxResources from any JSON value; `field` names where it was found ("linux.resources", "resources"). */
export function parseLinuxResources(raw: unknown, field: Field): LinuxResources {
  const r = optionalObject(raw, field);
  if (!r) return {};
  const out: LinuxResources = {};
  const memory = section(r, 'memory', field);
  if (memory) {
    const limit = optionalInteger(
      memory.v.limit,
      child(memory.field, 'limit'),
      (n) => n >= -1 && n <= INT64_MAX,
      '-1 (no limit) or a byte count',
    );
    out.memory = limit === undefined ? {} : { limit };
  }
  const cpu = section(r, 'cpu', field);
  if (cpu) {
    const at = (name: string) => child(cpu.field, name);
    const shares = optionalInteger(cpu.v.shares, at('shares'), (n) => n >= 0 && n <= MAX_SHARES, `0 to ${MAX_SHARES}`);
    const quota = optionalInteger(
      cpu.v.quota,
      at('quota'),
      (n) => n === -1 || n === 0 || (n >= MIN_CFS_US && n <= Number.MAX_SAFE_INTEGER),
      `-1 (no limit), 0 (unchanged) or at least ${MIN_CFS_US} (µs)`,
    );
    const period = optionalInteger(
      cpu.v.period,
      at('period'),
      (n) => n === 0 || (n >= MIN_CFS_US && n <= MAX_PERIOD_US),
      `0 (unchanged) or ${MIN_CFS_US} to ${MAX_PERIOD_US} (µs)`,
    );
    out.cpu = {
      ...(shares !== undefined ? { shares } : {}),
      ...(quota !== undefined ? { quota } : {}),
      ...(period !== undefined ? { period } : {}),
    };
  }
  const pids = section(r, 'pids', field);
  if (pids) {
    const limit = optionalInteger(
      pids.v.limit,
      child(pids.field, 'limit'),
      (n) => n >= -1 && n <= Number.MAX_SAFE_INTEGER,
      '-1 (no limit), 0 (unchanged) or a number of tasks',
    );
    out.pids = limit === undefined ? {} : { limit };
  }
  return out;
}

function section(r: JsonObject, name: string, parent: Field): { v: JsonObject; field: Field } | undefined {
  const field = child(parent, name);
  const v = optionalObject(r[name], field);
  return v && { v, field };
}

/**
 * The Update RPC's resources: a protobuf Any holding LinuxResources as JSON.
 * Throws a SpecError naming the problem (type, JSON or field).
 */
export function decodeLinuxResources(typeUrl: string, value: Uint8Array): LinuxResources {
  if (typeUrl && !typeUrl.endsWith(LINUX_RESOURCES_TYPE))
    throw new SpecError(`resources have type ${typeUrl}, expected types.containerd.io${LINUX_RESOURCES_TYPE}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(value).toString('utf8'));
  } catch (err) {
    throw new SpecError(`resources are not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const field = { where: '', name: 'resources' };
  if (!isObject(raw)) throw refuse(field, 'must be a JSON object');
  return parseLinuxResources(raw, field);
}
