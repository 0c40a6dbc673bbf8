// Per-call values that interceptors and handlers share (connect-es's
// contextValues): a key is a typed, unique object, so no two modules can
// collide on a string and a handler never reaches into a side map.

export interface ContextKey<T> {
  readonly id: symbol;
  readonly defaultValue: T;
}

/** A key for `ContextValues`; `get` returns `defaultValue` until someone sets it. */
export function createContextKey<T>(defaultValue: T, options: { description?: string } = {}): ContextKey<T> {
  return { id: Symbol(options.description), defaultValue };
}

export class ContextValues {
  private readonly values = new Map<symbol, unknown>();

  get<T>(key: ContextKey<T>): T {
    // Only set() writes under key.id, always with a T.
    return this.values.has(key.id) ? (this.values.get(key.id) as T) : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    this.values.set(key.id, value);
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    this.values.delete(key.id);
    return this;
  }
}
