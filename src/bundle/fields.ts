// Field checks for the JSON the bundle module parses (config.json, the Update
// RPC's resources): a value is taken field by field, never cast, and a wrong
// one is refused with a SpecError naming the field as the OCI spec spells it.

/** A bundle or spec the shim cannot run; the message names the cause. */
export class SpecError extends Error {}

export type JsonObject = Readonly<Record<string, unknown>>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** A uid or gid: what Linux takes (uint32). */
export function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
}

/** Where in a document a field is, for messages: "<file>: linux.resources.memory.limit". */
export interface Field {
  /** The document, prefixed to every message ('' for none). */
  where: string;
  /** The field's dotted path. */
  name: string;
}

export function child(field: Field, name: string | number): Field {
  const sub = typeof name === 'number' ? `[${name}]` : field.name ? `.${name}` : name;
  return { where: field.where, name: `${field.name}${sub}` };
}

export function refuse(field: Field, problem: string): SpecError {
  return new SpecError(`${field.where ? `${field.where}: ` : ''}${field.name} ${problem}`);
}

/** An optional object field; absent is undefined. */
export function optionalObject(v: unknown, field: Field): JsonObject | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw refuse(field, 'must be an object');
  return v;
}

export function optionalString(v: unknown, field: Field): string | undefined {
  if (v === undefined || typeof v === 'string') return v;
  throw refuse(field, 'must be a string');
}

export function optionalBoolean(v: unknown, field: Field): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  throw refuse(field, 'must be true or false');
}

export function optionalStringList(v: unknown, field: Field): string[] | undefined {
  if (v === undefined || isStringList(v)) return v;
  throw refuse(field, 'must be a list of strings');
}

/** An optional integer that passes `ok`; `allowed` says which ones do, for the message. */
export function optionalInteger(
  v: unknown,
  field: Field,
  ok: (n: number) => boolean,
  allowed: string,
): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isInteger(v) && ok(v)) return v;
  throw refuse(field, `must be ${allowed}, not ${shown(v)}`);
}

/** A refused value in a message, cut short. */
function shown(v: unknown): string {
  const text = typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? typeof v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
