// start's bootstrap negotiation, per containerd version, on constructed
// exchanges (only 1.6 runs here): the stdin and env each version sends (built
// as its source does, 2.3's BootstrapParams with our generated code), our
// reply, and that reply decoded the way that version decodes it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import {
  BootstrapParamsSchema,
  BootstrapResultSchema,
} from '../../src/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.js';
import { chooseStartReply, encodeStartReply, parseStartInput, startReply } from '../../src/frontend/bootstrap.js';
import {
  acceptReply,
  goJsonUnmarshalBootstrap,
  goProtoUnmarshalBootstrapResult,
  goTrimSpace,
  startCall,
  VERSIONS,
  type ContainerdVersion,
  type StartCallOptions,
} from '../harness/index.js';

const ADDRESS = 'unix:///run/containerd/s/8c2f9e1c6bd0f5a4d1e0b7a3c9d2e4f60718293a4b5c6d7e8f90a1b2c3d4e5f6';
const V2 = 'containerd.task.v2.Task';
const V3 = 'containerd.task.v3.Task';

function call(version: ContainerdVersion, extra: Partial<StartCallOptions> = {}) {
  return startCall(version, {
    id: 'pod-sandbox-1',
    namespace: 'k8s.io',
    grpcAddress: '/run/containerd/containerd.sock',
    ttrpcAddress: '/run/containerd/containerd.sock.ttrpc',
    ...extra,
  });
}

/** The whole exchange: containerd's inputs → our reply → containerd's reading of it. */
function exchange(version: ContainerdVersion, extra: Partial<StartCallOptions> = {}) {
  const { env, stdin } = call(version, extra);
  const reply = startReply(parseStartInput(stdin), env, ADDRESS);
  return { reply, accepted: acceptReply(version, reply) };
}

describe('what each containerd version gets, and accepts', () => {
  // Version 3 wherever containerd is known to take it (2.3+); elsewhere the plain address every version reads as 2.
  const expected: Record<ContainerdVersion, { version: number; service: string; encoding: string }> = {
    '1.6': { version: 2, service: V2, encoding: 'plain' },
    '1.7': { version: 2, service: V2, encoding: 'plain' },
    '2.0': { version: 2, service: V2, encoding: 'plain' },
    '2.3': { version: 3, service: V3, encoding: 'protobuf' },
  };
  for (const version of VERSIONS) {
    for (const configPath of [undefined, '/etc/wasmts.toml']) {
      test(`${version}, ${configPath ? 'with runtime options' : 'without runtime options'}`, () => {
        const { stdin, env } = call(version, configPath ? { configPath } : {});
        const want = expected[version];
        assert.equal(chooseStartReply(parseStartInput(stdin), env).encoding, want.encoding);
        const { reply, accepted } = exchange(version, configPath ? { configPath } : {});
        assert.deepEqual(accepted, {
          version: want.version,
          address: ADDRESS,
          protocol: 'ttrpc',
          service: want.service,
        });
        if (want.encoding === 'plain') assert.equal(Buffer.from(reply).toString(), ADDRESS);
      });
    }
  }

  test('WASMTS_SHIM_VERSION=3 (2.x shim-manager env): 2.0-2.2 get JSON version 3; 1.6 still the plain address; 1.7 refuses it, naming the version', () => {
    const env = { WASMTS_SHIM_VERSION: '3' };
    const v20 = exchange('2.0', { env });
    assert.deepEqual(JSON.parse(Buffer.from(v20.reply).toString()), {
      version: 3,
      address: ADDRESS,
      protocol: 'ttrpc',
    });
    assert.equal(v20.accepted.service, V3);
    assert.equal(exchange('2.3', { env }).accepted.service, V3);
    assert.deepEqual(exchange('1.6', { env }).accepted, {
      version: 2,
      address: ADDRESS,
      protocol: 'ttrpc',
      service: V2,
    });
    assert.throws(() => exchange('1.7', { env }), /unsupported shim version \(3\): not implemented/);
  });

  test('WASMTS_SHIM_VERSION=2 keeps 2.3 on version 2 (still a BootstrapResult)', () => {
    const { reply, accepted } = exchange('2.3', { env: { WASMTS_SHIM_VERSION: '2' } });
    assert.deepEqual(accepted, { version: 2, address: ADDRESS, protocol: 'ttrpc', service: V2 });
    assert.equal(fromBinary(BootstrapResultSchema, reply).version, 2);
  });

  test('a containerd announcing MAX_SHIM_VERSION=3 without BootstrapParams gets JSON version 3', () => {
    const stdin = new Uint8Array();
    assert.deepEqual(chooseStartReply(parseStartInput(stdin), { MAX_SHIM_VERSION: '3' }), {
      version: 3,
      encoding: 'json',
    });
    assert.deepEqual(chooseStartReply(parseStartInput(stdin), { MAX_SHIM_VERSION: '3', WASMTS_SHIM_VERSION: '2' }), {
      version: 2,
      encoding: 'plain',
    });
    const reply = startReply(parseStartInput(stdin), { MAX_SHIM_VERSION: '3' }, ADDRESS);
    assert.equal(acceptReply('2.0', reply).service, V3);
  });

  test('unreadable values of MAX_SHIM_VERSION and WASMTS_SHIM_VERSION change nothing', () => {
    for (const env of [
      { MAX_SHIM_VERSION: 'x' },
      { MAX_SHIM_VERSION: '' },
      { MAX_SHIM_VERSION: '2', WASMTS_SHIM_VERSION: 'yes' },
      { MAX_SHIM_VERSION: '2', WASMTS_SHIM_VERSION: '4' },
    ]) {
      assert.deepEqual(
        chooseStartReply({ kind: 'empty' }, env),
        { version: 2, encoding: 'plain' },
        JSON.stringify(env),
      );
    }
  });

  test('the plain address is read as version 2 by every version, 2.3 included (what a front end without stdin parsing may print)', () => {
    for (const version of VERSIONS) {
      assert.deepEqual(
        acceptReply(version, Buffer.from(ADDRESS)),
        { version: 2, address: ADDRESS, protocol: 'ttrpc', service: V2 },
        version,
      );
    }
    // 2.3 tries protobuf first: our socket addresses never decode as one, for any socket directory.
    for (const dir of ['/run/containerd/s', '/run/1000/containerd/s', '/tmp/containerd-s-1000', '/var/run/c']) {
      for (let i = 0; i < 64; i++) {
        const address = `unix://${dir}/${i.toString(16).padStart(2, '0').repeat(32)}`;
        assert.equal(goProtoUnmarshalBootstrapResult(Buffer.from(address)), undefined, address);
      }
    }
  });

  test("the BootstrapResult survives containerd's whitespace trim for every address length", () => {
    for (let n = 1; n <= 300; n++) {
      const address = `unix:///${'s'.repeat(n)}`;
      const reply = encodeStartReply({ version: 3, encoding: 'protobuf' }, address);
      assert.equal(goTrimSpace(reply).length, reply.length, `length ${n}`);
      assert.deepEqual(acceptReply('2.3', reply), { version: 3, address, protocol: 'ttrpc', service: V3 });
    }
  });

  test('the JSON reply is also what 2.3 takes, if it ever got one', () => {
    const reply = encodeStartReply({ version: 3, encoding: 'json' }, ADDRESS);
    assert.equal(goProtoUnmarshalBootstrapResult(reply), undefined, 'JSON must not pass as protobuf');
    assert.equal(acceptReply('2.3', reply).service, V3);
  });
});

describe("start's stdin as containerd writes it", () => {
  test('2.3 BootstrapParams (generated code): every field we use', () => {
    const { stdin } = call('2.3', { configPath: '/etc/wasmts.toml', debug: true });
    assert.deepEqual(parseStartInput(stdin), {
      kind: 'bootstrap',
      instanceId: 'pod-sandbox-1',
      namespace: 'k8s.io',
      logLevel: -4,
      containerdVersion: 'v2.3.0',
      ttrpcAddress: '/run/containerd/containerd.sock.ttrpc',
      grpcAddress: '/run/containerd/containerd.sock',
      containerdBinary: '/usr/bin/containerd',
      socketDir: '/run/containerd/s',
      optionTypes: ['runtimeoptions.v1.Options'],
    });
  });

  test('a BootstrapParams with only some fields (log level info is not on the wire) is still one', () => {
    const stdin = toBinary(
      BootstrapParamsSchema,
      create(BootstrapParamsSchema, { instanceId: 'c', containerdVersion: 'v2.3.1' }),
    );
    assert.deepEqual(parseStartInput(stdin), { kind: 'bootstrap', instanceId: 'c', containerdVersion: 'v2.3.1' });
  });

  test('1.6-2.2 runtime options: an Any, not BootstrapParams', () => {
    assert.deepEqual(parseStartInput(call('1.7', { configPath: '/x' }).stdin), {
      kind: 'other',
      optionTypes: ['runtimeoptions.v1.Options'],
    });
    const runc = toBinary(
      AnySchema,
      create(AnySchema, { typeUrl: 'containerd.runc.v1.Options', value: new Uint8Array([0x08, 0x01]) }),
    );
    assert.equal(parseStartInput(runc).kind, 'other');
    assert.deepEqual(parseStartInput(call('1.6').stdin), { kind: 'empty' });
  });
});

describe('the Go emulation itself tells accepted from refused', () => {
  test('1.6 and 1.7 take a BootstrapResult or JSON as an address (so they must never get one)', () => {
    const proto = encodeStartReply({ version: 3, encoding: 'protobuf' }, ADDRESS);
    assert.notEqual(acceptReply('1.6', proto).address, ADDRESS);
    assert.notEqual(acceptReply('1.7', proto).address, ADDRESS);
    const json = encodeStartReply({ version: 2, encoding: 'json' }, ADDRESS);
    assert.notEqual(acceptReply('1.6', json).address, ADDRESS);
    assert.equal(acceptReply('1.7', json).address, ADDRESS);
  });

  test('2.0-2.2 cannot read a BootstrapResult; version 4 and unknown protocols are refused', () => {
    const proto = encodeStartReply({ version: 3, encoding: 'protobuf' }, ADDRESS);
    assert.notEqual(acceptReply('2.0', proto).address, ADDRESS);
    assert.throws(
      () => acceptReply('2.0', Buffer.from(JSON.stringify({ version: 4, address: ADDRESS, protocol: 'ttrpc' }))),
      /unsupported shim version \(4\)/,
    );
    assert.throws(
      () => acceptReply('2.0', Buffer.from(JSON.stringify({ version: 3, address: ADDRESS, protocol: 'http' }))),
      /unexpected protocol: "http"/,
    );
    assert.throws(
      () =>
        acceptReply(
          '2.3',
          toBinary(
            BootstrapResultSchema,
            create(BootstrapResultSchema, { version: 5, address: ADDRESS, protocol: 'ttrpc' }),
          ),
        ),
      /only v2 and v3/,
    );
  });

  test('Go details: TrimSpace, case-insensitive JSON keys, type errors, strict wire format', () => {
    assert.deepEqual([...goTrimSpace(Buffer.from(' \n\u00a0x\t\u2003'))], [...Buffer.from('x')]);
    assert.deepEqual([...goTrimSpace(new Uint8Array([0x85, 0x41, 0x0a]))], [0x85, 0x41], 'a lone 0x85 is not a rune');
    assert.deepEqual(goJsonUnmarshalBootstrap('{"Version":3,"ADDRESS":"a","protocol":"ttrpc"}'), {
      version: 3,
      address: 'a',
      protocol: 'ttrpc',
    });
    assert.equal(goJsonUnmarshalBootstrap('{"version":"3"}'), undefined);
    assert.equal(goJsonUnmarshalBootstrap('[1]'), undefined);
    assert.equal(goProtoUnmarshalBootstrapResult(new Uint8Array([0x12, 0x05, 0x61])), undefined, 'truncated');
    assert.equal(goProtoUnmarshalBootstrapResult(new Uint8Array([0x12, 0x01, 0xff])), undefined, 'invalid UTF-8');
    assert.equal(goProtoUnmarshalBootstrapResult(new Uint8Array([0x0f])), undefined, 'wire type 7');
    assert.deepEqual(
      goProtoUnmarshalBootstrapResult(new Uint8Array([0x08, 0x03, 0xf8, 0x01, 0x05])),
      { version: 3, address: '', protocol: '' },
      'unknown field 31 kept',
    );
  });
});

describe('the rule a front end without stdin parsing may apply', () => {
  // stdin empty, MAX_SHIM_VERSION unset/empty/2, WASMTS_SHIM_VERSION not 3 → the plain address.
  test('within it, this module answers the plain address too', () => {
    for (const max of [undefined, '', '2']) {
      for (const wanted of [undefined, '', '2', 'x']) {
        const env = {
          ...(max === undefined ? {} : { MAX_SHIM_VERSION: max }),
          ...(wanted === undefined ? {} : { WASMTS_SHIM_VERSION: wanted }),
        };
        assert.equal(
          Buffer.from(startReply(parseStartInput(new Uint8Array()), env, ADDRESS)).toString(),
          ADDRESS,
          JSON.stringify(env),
        );
      }
    }
  });
});
