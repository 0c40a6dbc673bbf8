// `wasmts image`: build an OCI image layout tar around a Wasm module, for
// `ctr image import --all-platforms`.

import { parseArgs } from 'node:util';
import { ImageError, packImage, type PackImageOptions, type Platform } from '../image/oci.js';

const IMAGE_USAGE = `usage: wasmts image --ref NAME[:TAG] --out FILE.tar [options] MODULE

Write an OCI image layout tar holding MODULE (a .wasm file, or a native binary
with --platform linux/amd64) for \`ctr image import --all-platforms\`.

options:
  --ref NAME[:TAG]       image reference (hello:latest -> docker.io/library/hello:latest)
  --out FILE             output tar (written atomically)
  --file SRC:DEST        add a file or directory to the image (repeatable)
  --module-dest PATH     where the module goes (default /<basename of MODULE>)
  --entrypoint ARGV      entrypoint: a path, or a JSON array ('["/app.wasm","-v"]')
                         (default [<module-dest>])
  --cmd ARG              append an argument to config.Cmd (repeatable), or one
                         JSON array
  --env KEY=VALUE        add to config.Env (repeatable)
  --annotation KEY=VALUE manifest annotation and config label (repeatable)
  --label KEY=VALUE      config label (repeatable; replaces annotations as labels)
  --platform OS/ARCH[/VARIANT]  default wasip1/wasm
  -h, --help             show this help
`;

class UsageError extends Error {}

function keyValues(list: string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!list) return undefined;
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} wants KEY=VALUE, got ${JSON.stringify(kv)}`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function argvList(values: string[], flag: string): string[] {
  if (values.length === 1 && values[0].trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values[0]);
    } catch {
      throw new UsageError(`${flag}: bad JSON array ${values[0]}`);
    }
    if (!Array.isArray(parsed) || parsed.some((s) => typeof s !== 'string'))
      throw new UsageError(`${flag}: want a JSON array of strings`);
    return parsed as string[];
  }
  return values;
}

function parsePlatformFlag(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === ''))
    throw new UsageError(`--platform wants OS/ARCH[/VARIANT], got ${JSON.stringify(s)}`);
  return { os: parts[0], architecture: parts[1], ...(parts[2] ? { variant: parts[2] } : {}) };
}

function parseFileFlag(s: string): { src: string; dest: string } {
  // SRC:DEST, split at the last ':' (temp paths may contain ':' less often than
  // image paths do); a bare SRC goes to /<basename>.
  const i = s.lastIndexOf(':');
  if (i < 0) return { src: s, dest: '' };
  const src = s.slice(0, i);
  const dest = s.slice(i + 1);
  if (src === '' || dest === '') throw new UsageError(`--file wants SRC:DEST, got ${JSON.stringify(s)}`);
  return { src, dest };
}

export interface ImageIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export async function imageMain(argv: string[], io: ImageIO = process): Promise<number> {
  const fail = (msg: string, code: number): number => {
    io.stderr.write(`wasmts image: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    return code;
  };
  let opts: PackImageOptions;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ref: { type: 'string' },
        out: { type: 'string', short: 'o' },
        file: { type: 'string', multiple: true },
        'module-dest': { type: 'string' },
        entrypoint: { type: 'string' },
        cmd: { type: 'string', multiple: true },
        env: { type: 'string', multiple: true },
        annotation: { type: 'string', multiple: true },
        label: { type: 'string', multiple: true },
        platform: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout.write(IMAGE_USAGE);
      return 0;
    }
    if (positionals.length !== 1)
      throw new UsageError(
        positionals.length === 0
          ? 'no module given (see --help)'
          : `exactly one module expected, got ${positionals.length}`,
      );
    if (!values.ref) throw new UsageError('--ref is required');
    if (!values.out) throw new UsageError('--out is required');
    opts = {
      module: positionals[0],
      ref: values.ref,
      output: values.out,
      files: (values.file ?? []).map(parseFileFlag),
    };
    if (values['module-dest']) opts.moduleDest = values['module-dest'];
    if (values.entrypoint !== undefined) opts.entrypoint = argvList([values.entrypoint], '--entrypoint');
    if (values.cmd) opts.cmd = argvList(values.cmd, '--cmd');
    if (values.env) opts.env = values.env;
    const annotations = keyValues(values.annotation, '--annotation');
    if (annotations) opts.annotations = annotations;
    const labels = keyValues(values.label, '--label');
    if (labels) opts.labels = labels;
    if (values.platform) opts.platform = parsePlatformFlag(values.platform);
  } catch (err) {
    return fail((err as Error).message, 2);
  }
  try {
    const res = await packImage(opts);
    io.stdout.write(`${res.output} ${res.name} ${res.digest}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ImageError) return fail(err.message, 1);
    return fail(`internal error: ${(err as Error)?.stack ?? String(err)}`, 1);
  }
}
