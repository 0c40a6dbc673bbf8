// The one mapping from what daemon logic throws to the ttrpc status containerd gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, TtrpcError } from '../../src/ttrpc/status.js';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  notImplemented,
  ShimError,
  toTtrpcError,
} from '../../src/daemon/errors.js';

test('each kind maps to its gRPC code, the message unchanged', () => {
  const cases: [ShimError, Code][] = [
    [invalidArgument('bad spec'), Code.InvalidArgument],
    [notFound('container x not found'), Code.NotFound],
    [alreadyExists('container x already exists'), Code.AlreadyExists],
    [failedPrecondition('cannot start a running process'), Code.FailedPrecondition],
    [notImplemented('checkpoint is not supported'), Code.Unimplemented],
    [new ShimError('unknown', 'container x: EIO'), Code.Unknown],
  ];
  for (const [err, code] of cases) {
    const wire = toTtrpcError(err);
    assert.ok(wire instanceof TtrpcError);
    assert.deepEqual([wire.code, wire.message], [code, err.message], err.kind);
  }
});

test('a TtrpcError passes through; anything else is Unknown with its message', () => {
  const status = new TtrpcError(Code.Unavailable, 'not yet');
  assert.equal(toTtrpcError(status), status);
  const plain = toTtrpcError(new RangeError('out of range'));
  assert.deepEqual([plain.code, plain.message], [Code.Unknown, 'out of range']);
  const thrownString = toTtrpcError('just a string');
  assert.deepEqual([thrownString.code, thrownString.message], [Code.Unknown, 'just a string']);
});

test('a ShimError keeps its cause for logs', () => {
  const cause = new Error('EACCES');
  const err = invalidArgument('cannot open stdin', { cause });
  assert.equal(err.cause, cause);
  assert.equal(err.name, 'ShimError');
});
