// Tells a core module from a component by the 8-byte preamble: "\0asm", then a
// 16-bit version and a 16-bit layer (core modules: version 1, layer 0;
// components: layer 1, version 0x0d during the component model's pre-1.0 era).
export type WasmKind = 'module' | 'component';

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** The kind of Wasm binary `header` starts, or a sentence saying why it is neither. */
export function wasmKind(header: Uint8Array): WasmKind | { error: string } {
  if (header.length < 8 || !MAGIC.every((b, i) => header[i] === b)) return { error: 'no \\0asm magic' };
  const version = header[4] | (header[5] << 8);
  const layer = header[6] | (header[7] << 8);
  if (layer === 0 && version === 1) return 'module';
  if (layer === 1) return 'component';
  return { error: `unknown Wasm binary version ${version} layer ${layer}` };
}
