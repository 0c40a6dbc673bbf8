// A tar reader for the tests of src/image/oci.ts: it reads back what writeTar
// and packImage wrote (ustar, pax 'x' path/linkpath, GNU 'L'/'K' long names).
// Nothing in the shim reads tars, so it lives with the tests.
import type { TarEntry } from '../../src/image/oci.js';

const BLOCK = 512;

function cstr(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function readOctal(buf: Buffer, off: number, len: number): number {
  const s = cstr(buf, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** Parse a tar archive (ustar, pax 'x' path/linkpath, GNU 'L' long names). */
export function readTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (sum !== readOctal(h, 148, 8)) throw new Error(`tar: bad header checksum at offset ${off}`);
    const size = readOctal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 0x30);
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    if (data.length !== size) throw new Error(`tar: truncated entry at offset ${off}`);
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      const text = data.toString('utf8');
      let p = 0;
      while (p < text.length) {
        const sp = text.indexOf(' ', p);
        const len = parseInt(text.slice(p, sp), 10);
        const rec = text.slice(sp + 1, p + len - 1);
        const eq = rec.indexOf('=');
        if (rec.slice(0, eq) === 'path') longName = rec.slice(eq + 1);
        if (rec.slice(0, eq) === 'linkpath') longLink = rec.slice(eq + 1);
        p += len;
      }
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = cstr(data, 0, data.length);
      continue;
    }
    if (type === 'K') {
      longLink = cstr(data, 0, data.length);
      continue;
    }
    let name = cstr(h, 0, 100);
    if (h.toString('ascii', 257, 262) === 'ustar') {
      const prefix = cstr(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== undefined) name = longName;
    const linkname = longLink ?? cstr(h, 157, 100);
    longName = longLink = undefined;
    const kind: TarEntry['type'] =
      type === '0' || type === '7' ? 'file' : type === '5' ? 'dir' : type === '2' ? 'symlink' : 'other';
    out.push({
      name,
      type: kind,
      mode: readOctal(h, 100, 8),
      uid: readOctal(h, 108, 8),
      gid: readOctal(h, 116, 8),
      mtime: readOctal(h, 136, 12),
      ...(kind === 'file' ? { data: Buffer.from(data) } : {}),
      ...(kind === 'symlink' ? { linkname } : {}),
    });
  }
  return out;
}
