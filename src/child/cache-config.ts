// Where the Wasm child keeps transpiled components (component-cache.ts) and
// how big that may grow: the daemon chooses, from its own environment, and
// sends the choice with each job; kept apart from the cache itself so the
// daemon's engine does not load the cache's implementation.
import * as path from 'node:path';

export interface ComponentCacheConfig {
  /** Absolute directory of the cache entries. */
  dir: string;
  /** Upper bound of all entries together, in bytes. */
  maxBytes: number;
}

export const DEFAULT_CACHE_DIR = '/var/lib/wasmts/components';
export const DEFAULT_CACHE_MAX_MB = 512;

/** The daemon's choice of cache: WASMTS_COMPONENT_CACHE (a directory) and WASMTS_COMPONENT_CACHE_MAX_MB from its environment. */
export function componentCacheConfig(env: NodeJS.ProcessEnv): ComponentCacheConfig {
  const dir =
    env.WASMTS_COMPONENT_CACHE && path.isAbsolute(env.WASMTS_COMPONENT_CACHE)
      ? env.WASMTS_COMPONENT_CACHE
      : DEFAULT_CACHE_DIR;
  const mb = Number(env.WASMTS_COMPONENT_CACHE_MAX_MB);
  return { dir, maxBytes: (Number.isFinite(mb) && mb > 0 ? mb : DEFAULT_CACHE_MAX_MB) * 1024 * 1024 };
}
