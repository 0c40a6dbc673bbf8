// Go-style flags as containerd passes them to a shim binary: single dash,
// `-name value` or `-name=value`, booleans take no value, then the action.

export interface ShimFlags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  action: string;
}

const STRING_FLAGS: Record<string, keyof ShimFlags> = {
  namespace: 'namespace',
  address: 'address',
  'publish-binary': 'publishBinary',
  id: 'id',
  bundle: 'bundle',
  socket: 'socket',
};
const BOOL_FLAGS: Record<string, keyof ShimFlags> = { debug: 'debug', v: 'version' };

export class FlagError extends Error {}

export function parseShimFlags(argv: readonly string[]): ShimFlags {
  const flags: ShimFlags = {
    namespace: '',
    address: '',
    publishBinary: '',
    id: '',
    bundle: '',
    socket: '',
    debug: false,
    version: false,
    action: '',
  };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-' || rest.length > 0) {
      rest.push(arg);
      continue;
    }
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    const boolKey = BOOL_FLAGS[name];
    if (boolKey) {
      (flags as unknown as Record<string, unknown>)[boolKey] =
        inline === undefined ? true : /^(1|t|true)$/i.test(inline);
      continue;
    }
    const strKey = STRING_FLAGS[name];
    if (!strKey) throw new FlagError(`flag provided but not defined: -${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new FlagError(`flag needs an argument: -${name}`);
    (flags as unknown as Record<string, unknown>)[strKey] = value;
  }
  flags.action = rest[0] ?? '';
  return flags;
}
