// LinuxResources from config.json or the Update RPC (src/bundle/resources.ts):
// only checked values in range reach a cgroup file; each refusal names the field.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeLinuxResources, parseLinuxResources, SpecError } from '../../src/bundle/index.js';

const TYPE = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';
const field = { where: '', name: 'resources' };
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v));

function refused(raw: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseLinuxResources(raw, field),
    (e: unknown) => e instanceof SpecError && pattern.test(e.message),
    `${JSON.stringify(raw)} should be refused with ${pattern}`,
  );
}

describe('parseLinuxResources', () => {
  test('the fields the cgroup takes, in range, come back; the rest is left out', () => {
    assert.deepEqual(
      parseLinuxResources(
        {
          memory: { limit: 268435456, reservation: 1, swap: -1 },
          cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0-1' },
          pids: { limit: 100 },
          devices: [{ allow: false, access: 'rwm' }],
          unified: { 'memory.high': '1G' },
        },
        field,
      ),
      { memory: { limit: 268435456 }, cpu: { shares: 1024, quota: 50000, period: 100000 }, pids: { limit: 100 } },
    );
    assert.deepEqual(parseLinuxResources(undefined, field), {});
    assert.deepEqual(parseLinuxResources({ memory: {}, cpu: {} }, field), { memory: {}, cpu: {} });
  });

  test('-1 lifts a limit and 0 leaves it; both are accepted where the OCI spec has them', () => {
    assert.deepEqual(
      parseLinuxResources(
        { memory: { limit: -1 }, cpu: { quota: -1, shares: 0, period: 0 }, pids: { limit: 0 } },
        field,
      ),
      { memory: { limit: -1 }, cpu: { quota: -1, shares: 0, period: 0 }, pids: { limit: 0 } },
    );
  });

  test('wrong types and values out of range are refused, naming the field and the value', () => {
    refused([], /^resources must be an object$/);
    refused({ memory: 5 }, /^resources\.memory must be an object$/);
    refused(
      { memory: { limit: '1G' } },
      /^resources\.memory\.limit must be -1 \(no limit\) or a byte count, not "1G"$/,
    );
    refused({ memory: { limit: -2 } }, /memory\.limit .*not -2$/);
    refused({ memory: { limit: 1.5 } }, /memory\.limit .*not 1\.5$/);
    refused({ memory: { limit: 2 ** 64 } }, /memory\.limit/);
    refused({ cpu: { shares: 262145 } }, /^resources\.cpu\.shares must be 0 to 262144, not 262145$/);
    refused({ cpu: { shares: -1 } }, /cpu\.shares/);
    refused(
      { cpu: { quota: 999 } },
      /^resources\.cpu\.quota must be -1 \(no limit\), 0 \(unchanged\) or at least 1000/,
    );
    refused({ cpu: { quota: -5 } }, /cpu\.quota/);
    refused({ cpu: { period: 999 } }, /^resources\.cpu\.period must be 0 \(unchanged\) or 1000 to 1000000/);
    refused({ cpu: { period: 1_000_001 } }, /cpu\.period/);
    refused({ cpu: { period: null } }, /cpu\.period .*not null$/);
    refused({ pids: { limit: -2 } }, /^resources\.pids\.limit must be/);
    refused({ pids: { limit: 'lots' } }, /pids\.limit/);
  });

  test('a refused value is shown cut short', () => {
    assert.throws(
      () => parseLinuxResources({ cpu: { shares: 'x'.repeat(500) } }, field),
      (e: Error) => e.message.length < 120 && e.message.endsWith('…'),
    );
  });
});

describe('decodeLinuxResources (the Update RPC)', () => {
  test('JSON in an Any of containerd type, or with no type', () => {
    assert.deepEqual(decodeLinuxResources(TYPE, bytes({ memory: { limit: 4096 } })), { memory: { limit: 4096 } });
    assert.deepEqual(decodeLinuxResources('', bytes({ pids: { limit: 3 } })), { pids: { limit: 3 } });
  });

  test('another type, bytes that are not JSON, or JSON that is not an object', () => {
    assert.throws(
      () => decodeLinuxResources('types.containerd.io/opencontainers/runtime-spec/1/WindowsResources', bytes({})),
      { message: /^resources have type .*WindowsResources, expected .*\/LinuxResources$/ },
    );
    assert.throws(() => decodeLinuxResources(TYPE, Buffer.from('{nope')), {
      message: /^resources are not valid JSON: /,
    });
    assert.throws(() => decodeLinuxResources(TYPE, bytes([1])), { message: /^resources must be a JSON object$/ });
    assert.throws(() => decodeLinuxResources(TYPE, bytes(null)), { message: /^resources must be a JSON object$/ });
    assert.throws(() => decodeLinuxResources(TYPE, bytes({ cpu: { shares: 1e6 } })), {
      message: /^resources\.cpu\.shares/,
    });
  });
});
