// JSON read in tests: parsed as unknown, checked, then typed.

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

export function isStringRecord(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** JSON.parse(text) as T once `check` accepts it; throws naming `what` (and the text) otherwise. */
export function parseJsonAs<T>(text: string, check: (v: unknown) => v is T, what: string): T {
  const v: unknown = JSON.parse(text);
  if (!check(v)) throw new Error(`${what} does not have the expected shape: ${text.slice(0, 500)}`);
  return v;
}

/** v through JSON and back: the plain data a process boundary would deliver, in v's own shape. */
export function jsonRoundTrip<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T; // JSON.stringify of plain data parses back to the same shape
}
