// The `wasmts` helper command: tools around the shim that users run by hand.
// Each subcommand's code is imported only when that subcommand runs.
import { VERSION, REVISION } from '../version.js';

const USAGE = `usage: wasmts <command> [options]

commands:
  image    pack a .wasm (plus files) into an OCI image tar for \`ctr image import --all-platforms\`
  traces   run an OTLP receiver (HTTP 4318, gRPC 4317) and show traces as waterfalls (terminal and web page)
  version  print the version

Run \`wasmts <command> --help\` for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'image':
      return (await import('./image.js')).imageMain(rest);
    case 'traces':
      return (await import('../viewer/cli.js')).tracesMain(rest);
    case 'version':
    case '-v':
    case '--version':
      process.stdout.write(`wasmts ${VERSION} (${REVISION})\n`);
      return 0;
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`wasmts: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`wasmts: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
