// Filled in by scripts/build.mjs from package.json and git; these are the fallbacks under tsx.
declare const __WASMTS_VERSION__: string | undefined;
declare const __WASMTS_REVISION__: string | undefined;

export const VERSION = typeof __WASMTS_VERSION__ === 'string' ? __WASMTS_VERSION__ : '0.0.0-dev';
export const REVISION = typeof __WASMTS_REVISION__ === 'string' ? __WASMTS_REVISION__ : 'unknown';
