// OCI image layout tars for `ctr image import --all-platforms`.
//
// packImage() writes one tar holding an OCI image layout:
//   oci-layout, index.json, blobs/sha256/<config|manifest|layer>
// with a single uncompressed layer (application/vnd.oci.image.layer.v1.tar)
// that contains the module (mode 0755) and any extra files. The output is
// deterministic: fixed mtimes (SOURCE_DATE_EPOCH or 0), uid/gid 0, sorted
// entries, and JSON written in a fixed key order.
//
// Also exports the small ustar writer it is built on (writeTar) and the
// docker-style reference parser (parseReference).

import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json';
const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PackImageOptions {
  /** Path to the .wasm module (or a native binary for a linux platform). */
  module: string;
  /** Extra files or directories (copied recursively) to put in the layer. */
  files?: { src: string; dest: string }[];
  /** name[:tag], e.g. docker.io/library/hello:latest or hello:latest (tag defaults to latest). */
  ref: string;
  /** Where the module goes in the image; default '/' + basename(module). */
  moduleDest?: string;
  /** Default [moduleDest]. */
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  /** Put on the manifest, and (unless labels is given) in config.Labels. */
  annotations?: Record<string, string>;
  /** config.Labels; default = annotations. */
  labels?: Record<string, string>;
  /** Default { os: 'wasip1', architecture: 'wasm' }. */
  platform?: Platform;
  /** The tar file to write (atomically: temp file in the same dir + rename). */
  output: string;
}

export interface PackImageResult {
  /** Manifest digest, "sha256:<hex>". */
  digest: string;
  /** Absolute path of the written tar. */
  output: string;
  /** Fully qualified reference, e.g. docker.io/library/hello:latest. */
  name: string;
  /** Config and layer digests, for tests. */
  configDigest: string;
  layerDigest: string;
}

/** A user-facing error (bad input); message is one line, ready to print. */
export class ImageError extends Error {
  override name = 'ImageError';
}

// ---------------------------------------------------------------------------
// References

export interface ParsedReference {
  /** registry host[:port], e.g. docker.io */
  domain: string;
  /** repository path, e.g. library/hello */
  path: string;
  tag: string;
  /** domain/path:tag */
  fullName: string;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/**
 * Parse and normalise a docker-style reference the way containerd's
 * ParseDockerRef does: "hello" -> docker.io/library/hello:latest,
 * "ghcr.io/a/b:v1" stays. Digests (@sha256:...) are rejected: an image tar
 * needs a tag. Throws ImageError with the reason.
 */
export function parseReference(ref: string): ParsedReference {
  const bad = (why: string): never => {
    throw new ImageError(`invalid reference ${JSON.stringify(ref)}: ${why}`);
  };
  if (ref === '') bad('empty');
  if (/\s/.test(ref)) bad('contains whitespace');
  if (ref.includes('@')) bad('digest references are not supported, use name:tag');
  let name = ref;
  let tag = 'latest';
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) {
    name = ref.slice(0, colon);
    tag = ref.slice(colon + 1);
    if (!TAG_RE.test(tag)) bad(`bad tag ${JSON.stringify(tag)} (must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`);
  }
  if (name === '') bad('empty name');
  let domain: string;
  let rest: string;
  const i = name.indexOf('/');
  const first = i < 0 ? '' : name.slice(0, i);
  if (
    i < 0 ||
    (!first.includes('.') && !first.includes(':') && first !== 'localhost' && first.toLowerCase() === first)
  ) {
    domain = 'docker.io';
    rest = name;
  } else {
    domain = first;
    rest = name.slice(i + 1);
    if (!DOMAIN_RE.test(domain)) bad(`bad registry ${JSON.stringify(domain)}`);
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !rest.includes('/')) rest = `library/${rest}`;
  for (const comp of rest.split('/')) {
    if (comp === '') bad('empty path component');
    if (comp.toLowerCase() !== comp) bad('repository name must be lowercase');
    if (!PATH_COMPONENT_RE.test(comp))
      bad(`bad path component ${JSON.stringify(comp)} (allowed: [a-z0-9] separated by '.', '_', '__' or '-')`);
  }
  const repo = `${domain}/${rest}`;
  if (repo.length > 255) bad('repository name longer than 255 characters');
  return { domain, path: rest, tag, fullName: `${repo}:${tag}` };
}

// ---------------------------------------------------------------------------
// ustar

export interface TarEntry {
  /** Path inside the archive; directories may end in '/'. */
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  mtime?: number;
  uid?: number;
  gid?: number;
  data?: Buffer;
  linkname?: string;
}

const BLOCK = 512;

function octal(buf: Buffer, off: number, len: number, value: number): void {
  const s = value.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new Error(`tar: value ${value} does not fit in ${len} bytes`);
  buf.write(s, off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
}

function header(
  name: string,
  e: { type: string; mode: number; size: number; mtime: number; uid: number; gid: number; linkname?: string },
): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let short = name;
  if (Buffer.byteLength(name) > 100) {
    // split at a '/' so that name <= 100 and prefix <= 155 (callers make sure it fits)
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    short = name.slice(cut + 1);
  }
  h.write(short, 0, 100, 'utf8');
  octal(h, 100, 8, e.mode & 0o7777);
  octal(h, 108, 8, e.uid);
  octal(h, 116, 8, e.gid);
  octal(h, 124, 12, e.size);
  octal(h, 136, 12, e.mtime);
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  h.write(e.type, 156, 1, 'ascii');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write(e.uid === 0 ? 'root' : '', 265, 32, 'ascii');
  h.write(e.gid === 0 ? 'root' : '', 297, 32, 'ascii');
  if (prefix) h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function fitsUstar(name: string): boolean {
  const n = Buffer.byteLength(name);
  if (n <= 100) return true;
  const cut = name.lastIndexOf('/', name.length - 2);
  return cut > 0 && Buffer.byteLength(name.slice(0, cut)) <= 155 && Buffer.byteLength(name.slice(cut + 1)) <= 100;
}

function pad(size: number): Buffer {
  const r = size % BLOCK;
  return Buffer.alloc(r === 0 ? 0 : BLOCK - r);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** Serialise entries into a ustar archive (with pax headers for long paths). */
export function writeTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    let name = e.name;
    if (e.type === 'dir' && !name.endsWith('/')) name += '/';
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const base = { mode: e.mode, mtime: e.mtime ?? 0, uid: e.uid ?? 0, gid: e.gid ?? 0 };
    const linkname = e.linkname ?? '';
    const pax: string[] = [];
    if (!fitsUstar(name)) pax.push(paxRecord('path', name));
    if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord('linkpath', linkname));
    if (pax.length) {
      const body = Buffer.from(pax.join(''), 'utf8');
      parts.push(
        header('PaxHeaders/' + path.posix.basename(name).slice(0, 80), { ...base, type: 'x', size: body.length }),
        body,
        pad(body.length),
      );
      name = name.slice(0, 100);
    }
    const type = e.type === 'file' ? '0' : e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : null;
    if (type === null) throw new Error(`tar: cannot write entry type ${e.type}`);
    parts.push(
      header(fitsUstar(name) ? name : name.slice(0, 100), {
        ...base,
        type,
        size: data.length,
        linkname: linkname.slice(0, 100),
      }),
      data,
      pad(data.length),
    );
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------
// packImage

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);
const PLATFORM_PART_RE = /^[a-z0-9_]+$/;

function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** Normalise an in-image path to a relative posix path without ./ or ..; throws on escapes. */
function imagePath(dest: string, what: string): string {
  if (dest === '' || dest.includes('\0')) throw new ImageError(`${what}: bad destination path ${JSON.stringify(dest)}`);
  const parts = dest.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ImageError(`${what}: destination ${JSON.stringify(dest)} must not contain '..'`);
  if (parts.length === 0) throw new ImageError(`${what}: destination ${JSON.stringify(dest)} names the image root`);
  return parts.join('/');
}

async function statOrNull(p: string) {
  try {
    return await fsp.stat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return null;
    throw err;
  }
}

function parsePlatform(p: Platform | undefined): Platform {
  const plat = p ?? { os: 'wasip1', architecture: 'wasm' };
  for (const [k, v] of [
    ['os', plat.os],
    ['architecture', plat.architecture],
    ...(plat.variant !== undefined ? [['variant', plat.variant]] : []),
  ] as [string, string][]) {
    if (typeof v !== 'string' || !PLATFORM_PART_RE.test(v))
      throw new ImageError(`invalid platform ${k} ${JSON.stringify(v)}`);
  }
  return plat;
}

export async function packImage(opts: PackImageOptions): Promise<PackImageResult> {
  if (!opts || typeof opts.module !== 'string' || opts.module === '') throw new ImageError('no module given');
  if (typeof opts.output !== 'string' || opts.output === '') throw new ImageError('no output file given');
  const ref = parseReference(opts.ref);
  const platform = parsePlatform(opts.platform);
  const mtime = Number.parseInt(process.env.SOURCE_DATE_EPOCH ?? '0', 10) || 0;

  // module
  const modStat = await statOrNull(opts.module);
  if (!modStat) throw new ImageError(`module ${opts.module} does not exist`);
  if (!modStat.isFile()) throw new ImageError(`module ${opts.module} is not a regular file`);
  const modData = await fsp.readFile(opts.module);
  if (platform.architecture === 'wasm' && (modData.length < 4 || !modData.subarray(0, 4).equals(WASM_MAGIC))) {
    throw new ImageError(`${opts.module} is not a WebAssembly module (no \\0asm magic)`);
  }
  const moduleDest = imagePath(opts.moduleDest ?? path.basename(opts.module), 'module');

  // layer entries: path -> entry
  const entries = new Map<string, TarEntry>();
  const addParents = (p: string) => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const existing = entries.get(dir);
      if (existing && existing.type !== 'dir')
        throw new ImageError(`${dir} is both a file and a directory in the image`);
      if (!existing) entries.set(dir, { name: dir, type: 'dir', mode: 0o755, mtime });
    }
  };
  const addFile = (p: string, data: Buffer, mode: number, src: string) => {
    addParents(p);
    if (entries.has(p)) throw new ImageError(`duplicate destination /${p} (from ${src})`);
    entries.set(p, { name: p, type: 'file', mode, mtime, data });
  };
  addFile(moduleDest, modData, 0o755, opts.module);

  const addTree = async (src: string, dest: string): Promise<void> => {
    const st = await statOrNull(src);
    if (!st) throw new ImageError(`file ${src} does not exist`);
    if (st.isDirectory()) {
      addParents(dest);
      const existing = entries.get(dest);
      if (existing && existing.type !== 'dir') throw new ImageError(`duplicate destination /${dest} (from ${src})`);
      entries.set(dest, { name: dest, type: 'dir', mode: st.mode & 0o7777, mtime });
      for (const child of (await fsp.readdir(src)).sort()) await addTree(path.join(src, child), `${dest}/${child}`);
    } else if (st.isFile()) {
      addFile(dest, await fsp.readFile(src), st.mode & 0o7777, src);
    } else {
      throw new ImageError(`file ${src} is not a regular file or directory`);
    }
  };
  for (const f of opts.files ?? []) {
    if (!f || typeof f.src !== 'string' || f.src === '') throw new ImageError('file entry without a source path');
    await addTree(
      f.src,
      imagePath(typeof f.dest === 'string' && f.dest !== '' ? f.dest : path.basename(f.src), `file ${f.src}`),
    );
  }

  const layer = writeTar([...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
  const layerDigest = sha256(layer);

  // config
  const annotations = opts.annotations ?? {};
  const labels = opts.labels ?? annotations;
  const imgConfig: Record<string, unknown> = {
    Entrypoint: opts.entrypoint ?? ['/' + moduleDest],
  };
  if (opts.cmd) imgConfig.Cmd = opts.cmd;
  if (opts.env) imgConfig.Env = opts.env;
  if (Object.keys(labels).length) imgConfig.Labels = labels;
  for (const e of opts.env ?? [])
    if (typeof e !== 'string' || !e.includes('=') || e.startsWith('='))
      throw new ImageError(`bad env entry ${JSON.stringify(e)} (want KEY=value)`);
  if (!Array.isArray(imgConfig.Entrypoint) || (imgConfig.Entrypoint as unknown[]).some((s) => typeof s !== 'string'))
    throw new ImageError('entrypoint must be a list of strings');
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: imgConfig,
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    }),
  );
  const configDigest = sha256(config);

  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_MANIFEST,
      config: { mediaType: MEDIA_TYPE_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: MEDIA_TYPE_LAYER, digest: layerDigest, size: layer.length }],
      ...(Object.keys(annotations).length ? { annotations } : {}),
    }),
  );
  const manifestDigest = sha256(manifest);

  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_INDEX,
      manifests: [
        {
          mediaType: MEDIA_TYPE_MANIFEST,
          digest: manifestDigest,
          size: manifest.length,
          annotations: { [ANNOTATION_IMAGE_NAME]: ref.fullName, [ANNOTATION_REF_NAME]: ref.tag },
          platform: {
            architecture: platform.architecture,
            os: platform.os,
            ...(platform.variant ? { variant: platform.variant } : {}),
          },
        },
      ],
    }),
  );

  const blob = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;
  const blobs = new Map<string, Buffer>([
    [configDigest, config],
    [layerDigest, layer],
    [manifestDigest, manifest],
  ]);
  const archive = writeTar([
    { name: 'oci-layout', type: 'file', mode: 0o644, mtime, data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', type: 'file', mode: 0o644, mtime, data: index },
    { name: 'blobs', type: 'dir', mode: 0o755, mtime },
    { name: 'blobs/sha256', type: 'dir', mode: 0o755, mtime },
    ...[...blobs.keys()]
      .sort()
      .map((d): TarEntry => ({ name: blob(d), type: 'file', mode: 0o644, mtime, data: blobs.get(d)! })),
  ]);

  // write atomically
  const output = path.resolve(opts.output);
  const dir = path.dirname(output);
  const dirStat = await statOrNull(dir);
  if (!dirStat || !dirStat.isDirectory()) throw new ImageError(`output directory ${dir} does not exist`);
  const outStat = await statOrNull(output);
  if (outStat?.isDirectory()) throw new ImageError(`output ${output} is a directory`);
  const tmp = path.join(dir, `.${path.basename(output)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fsp.writeFile(tmp, archive, { mode: 0o644 });
    await fsp.rename(tmp, output);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw new ImageError(`cannot write ${output}: ${(err as Error).message}`);
  }
  return { digest: manifestDigest, output, name: ref.fullName, configDigest, layerDigest };
}
