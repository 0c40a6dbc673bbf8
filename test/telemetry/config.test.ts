import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  readTelemetryConfig,
  parseResourceAttributes,
  appendSignalPath,
  DEFAULT_SERVICE_NAME,
  type TelemetryConfig,
  type EnabledTelemetryConfig,
} from '../../src/telemetry/config.js';

function on(env: Record<string, string>): EnabledTelemetryConfig {
  const c: TelemetryConfig = readTelemetryConfig(env);
  assert.equal(c.enabled, true, `expected enabled for ${JSON.stringify(env)}: ${!c.enabled ? c.reason : ''}`);
  return c;
}
function off(env: Record<string, string>): string {
  const c = readTelemetryConfig(env);
  assert.equal(c.enabled, false, `expected disabled for ${JSON.stringify(env)}`);
  return c.enabled ? '' : c.reason;
}

test('disabled without any endpoint or exporter', () => {
  assert.match(off({}), /no OTLP endpoint/);
  assert.match(off({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /no OTLP endpoint/);
  // empty values count as unset
  assert.match(off({ OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '  ' }), /no OTLP endpoint/);
});

test('enabled by generic endpoint, per-signal endpoint, or OTEL_TRACES_EXPORTER=otlp', () => {
  on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' });
  on({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' });
  const c = on({ OTEL_TRACES_EXPORTER: 'otlp' });
  assert.equal(c.endpoint, 'http://localhost:4318/v1/traces');
  assert.equal(c.protocol, 'http/protobuf');
  on({ OTEL_TRACES_EXPORTER: ' OTLP ' });
});

test('OTEL_SDK_DISABLED=true (any case) and OTEL_TRACES_EXPORTER=none win', () => {
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'otlp' };
  assert.match(off({ ...ep, OTEL_SDK_DISABLED: 'true' }), /OTEL_SDK_DISABLED/);
  assert.match(off({ ...ep, OTEL_SDK_DISABLED: 'TRUE' }), /OTEL_SDK_DISABLED/);
  assert.match(off({ ...ep, OTEL_SDK_DISABLED: ' True ' }), /OTEL_SDK_DISABLED/);
  on({ ...ep, OTEL_SDK_DISABLED: 'false' });
  on({ ...ep, OTEL_SDK_DISABLED: '1' }); // only "true" disables, per spec
  assert.match(
    off({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    /OTEL_TRACES_EXPORTER/,
  );
  assert.match(
    off({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'otlp,none' }),
    /OTEL_TRACES_EXPORTER/,
  );
});

test('unsupported OTEL_TRACES_EXPORTER values warn', () => {
  const c = on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'console' });
  assert.ok(
    c.warnings.some((w) => /console not supported/.test(w)),
    c.warnings.join('; '),
  );
  assert.match(off({ OTEL_TRACES_EXPORTER: 'zipkin' }), /no OTLP endpoint/);
});

test('default endpoints per protocol', () => {
  assert.equal(on({ OTEL_TRACES_EXPORTER: 'otlp' }).endpoint, 'http://localhost:4318/v1/traces');
  assert.equal(
    on({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).endpoint,
    'http://localhost:4318/v1/traces',
  );
  assert.equal(
    on({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).endpoint,
    'http://localhost:4317',
  );
});

test('generic endpoint gets /v1/traces for HTTP (no double slash), as is for grpc', () => {
  assert.equal(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).endpoint, 'http://c:4318/v1/traces');
  assert.equal(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }).endpoint, 'http://c:4318/v1/traces');
  assert.equal(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c/otlp/' }).endpoint, 'https://c/otlp/v1/traces');
  assert.equal(
    on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).endpoint,
    'http://c:4318/v1/traces',
  );
  assert.equal(
    on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).endpoint,
    'http://c:4317',
  );
  assert.equal(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).endpoint, 'c:4317');
  assert.equal(appendSignalPath('http://x//'), 'http://x/v1/traces');
});

test('per-signal endpoint is used as is and overrides the generic one', () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://specific:9999/custom',
  };
  assert.equal(on(env).endpoint, 'http://specific:9999/custom');
  assert.equal(on({ ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).endpoint, 'http://specific:9999/custom');
  assert.equal(on({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://s:4318' }).endpoint, 'http://s:4318');
});

test('protocol: per-signal over generic over default; case-insensitive', () => {
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.equal(on(ep).protocol, 'http/protobuf');
  assert.equal(on({ ...ep, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).protocol, 'grpc');
  assert.equal(on({ ...ep, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).protocol, 'http/json');
  assert.equal(on({ ...ep, OTEL_EXPORTER_OTLP_PROTOCOL: 'GRPC' }).protocol, 'grpc');
  assert.equal(
    on({ ...ep, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }).protocol,
    'http/json',
  );
  assert.equal(
    on({ ...ep, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }).protocol,
    'grpc',
  );
});

test('unknown protocol: warning and http/protobuf', () => {
  const c = on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'foo' });
  assert.equal(c.protocol, 'http/protobuf');
  assert.deepEqual(c.warnings, ['OTEL_EXPORTER_OTLP_PROTOCOL=foo is not supported; using http/protobuf']);
  assert.equal(c.endpoint, 'http://c:4318/v1/traces');
  const d = on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' });
  assert.deepEqual(d.warnings, ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=thrift is not supported; using http/protobuf']);
});

test('an HTTP endpoint that is not a URL disables tracing with a reason', () => {
  assert.match(off({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }), /not a valid URL/);
  assert.match(off({ OTEL_EXPORTER_OTLP_ENDPOINT: '::::' }), /not a valid URL/);
});

test('service name: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, else default', () => {
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.equal(on(ep).serviceName, DEFAULT_SERVICE_NAME);
  assert.equal(DEFAULT_SERVICE_NAME, 'containerd-shim-wasmts');
  assert.equal(on({ ...ep, OTEL_SERVICE_NAME: 'mine' }).serviceName, 'mine');
  const r = on({ ...ep, OTEL_RESOURCE_ATTRIBUTES: 'service.name=fromattrs,deployment.environment=prod' });
  assert.equal(r.serviceName, 'fromattrs');
  assert.deepEqual(r.resourceAttributes, { 'deployment.environment': 'prod' });
  assert.equal(
    on({ ...ep, OTEL_SERVICE_NAME: 'mine', OTEL_RESOURCE_ATTRIBUTES: 'service.name=x' }).serviceName,
    'mine',
  );
  // also reported when disabled (the child needs nothing else)
  assert.equal(readTelemetryConfig({ OTEL_SERVICE_NAME: 'n' }).serviceName, 'n');
});

test('OTEL_RESOURCE_ATTRIBUTES parsing (percent-decoding, malformed discarded)', () => {
  assert.deepEqual(parseResourceAttributes('a=1, b = two ,c=x%2Cy%3Dz'), { a: '1', b: 'two', c: 'x,y=z' });
  assert.deepEqual(parseResourceAttributes(''), {});
  assert.deepEqual(parseResourceAttributes(undefined), {});
  assert.deepEqual(parseResourceAttributes('a=1,,b=2'), { a: '1', b: '2' });
  const w: string[] = [];
  assert.deepEqual(parseResourceAttributes('a=1,broken', w), {});
  assert.equal(w.length, 1);
  const w2: string[] = [];
  assert.deepEqual(parseResourceAttributes('a=%zz', w2), {});
  assert.equal(w2.length, 1);
  const c = on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'oops' });
  assert.ok(c.warnings.some((x) => /OTEL_RESOURCE_ATTRIBUTES/.test(x)));
});

test('sampler configuration', () => {
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.deepEqual(on(ep).sampler, { name: 'parentbased_always_on', ratio: 1 });
  for (const name of ['always_on', 'always_off', 'parentbased_always_on', 'parentbased_always_off'] as const) {
    assert.deepEqual(on({ ...ep, OTEL_TRACES_SAMPLER: name }).sampler, { name, ratio: 1 });
  }
  assert.deepEqual(on({ ...ep, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).sampler, {
    name: 'traceidratio',
    ratio: 0.25,
  });
  assert.deepEqual(
    on({ ...ep, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }).sampler,
    {
      name: 'parentbased_traceidratio',
      ratio: 0,
    },
  );
  // missing arg: 1.0
  assert.deepEqual(on({ ...ep, OTEL_TRACES_SAMPLER: 'traceidratio' }).sampler, { name: 'traceidratio', ratio: 1 });
  const bad = on({ ...ep, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' });
  assert.deepEqual(bad.sampler, { name: 'traceidratio', ratio: 1 });
  assert.ok(bad.warnings.some((w) => /OTEL_TRACES_SAMPLER_ARG=2/.test(w)));
  const unknown = on({ ...ep, OTEL_TRACES_SAMPLER: 'jaeger_remote' });
  assert.deepEqual(unknown.sampler, { name: 'parentbased_always_on', ratio: 1 });
  assert.ok(unknown.warnings.some((w) => /OTEL_TRACES_SAMPLER=jaeger_remote/.test(w)));
});

test('OTEL_PROPAGATORS: tracecontext, baggage, none; others warned and ignored; the same whether export is on or off', () => {
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.deepEqual(on(ep).propagators, { traceContext: true, baggage: true });
  assert.deepEqual(on({ ...ep, OTEL_PROPAGATORS: 'tracecontext' }).propagators, { traceContext: true, baggage: false });
  assert.deepEqual(on({ ...ep, OTEL_PROPAGATORS: 'baggage' }).propagators, { traceContext: false, baggage: true });
  assert.deepEqual(on({ ...ep, OTEL_PROPAGATORS: 'none' }).propagators, { traceContext: false, baggage: false });
  const b3 = on({ ...ep, OTEL_PROPAGATORS: 'b3,tracecontext' });
  assert.deepEqual(b3.propagators, { traceContext: true, baggage: false });
  assert.ok(
    b3.warnings.some((w) => /b3 not supported; ignored/.test(w)),
    b3.warnings.join('; '),
  );
  const off = readTelemetryConfig({ OTEL_SDK_DISABLED: 'true', OTEL_PROPAGATORS: 'tracecontext' });
  assert.equal(off.enabled, false);
  assert.deepEqual(off.propagators, { traceContext: true, baggage: false });
});

test('an invalid endpoint URL is a warning (export off), not a silent debug line', () => {
  const c = readTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://bad host:4318' });
  assert.equal(c.enabled, false);
  assert.ok(
    c.warnings.some((w) =>
      /OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/bad host:4318 is not a valid URL; spans are not exported/.test(w),
    ),
    c.warnings.join('; '),
  );
});

test('export timeout: per-signal over generic over 10 s default', () => {
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.equal(on(ep).exportTimeoutMs, 10000);
  assert.equal(on({ ...ep, OTEL_EXPORTER_OTLP_TIMEOUT: '500' }).exportTimeoutMs, 500);
  assert.equal(
    on({ ...ep, OTEL_EXPORTER_OTLP_TIMEOUT: '500', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '700' }).exportTimeoutMs,
    700,
  );
  const bad = on({ ...ep, OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' });
  assert.equal(bad.exportTimeoutMs, 10000);
  assert.ok(bad.warnings.some((w) => /OTEL_EXPORTER_OTLP_TIMEOUT=soon/.test(w)));
});

test('defaults to process.env and never throws on odd input', () => {
  assert.doesNotThrow(() => readTelemetryConfig());
  assert.doesNotThrow(() => readTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: undefined as unknown as string }));
});
