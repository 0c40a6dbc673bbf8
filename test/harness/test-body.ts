// Wrappers for end-to-end test bodies: container ids cleaned up after the
// test, containerd's log lines about them printed when it fails, and `ctr
// events` subscribed before the test acts.
import type { TestContext } from 'node:test';
import type { Suite } from './suite.js';
import { collect, until } from './wait.js';

export interface E2eOptions<S extends Suite> {
  /** What to print when the body fails; default the containerd log lines naming the test's ids. */
  dump?: (s: S, ids: string[]) => string;
  /** Default true. */
  logOnFailure?: boolean;
}

/**
 * A test body with fresh ids for `labels`: every id handed out during the
 * test (also by s.id() in the body) is cleaned up after it, and on failure
 * the containerd log lines that mention them are printed (the shim daemon's
 * log goes there).
 */
export function e2e<S extends Suite>(
  suite: () => S,
  labels: string[],
  body: (t: TestContext, s: S, ids: string[]) => Promise<void>,
  o: E2eOptions<S> = {},
): (t: TestContext) => Promise<void> {
  return async (t) => {
    const s = suite();
    const first = s.ids.length;
    const ids = labels.map((l) => s.id(l));
    t.after(async () => {
      await Promise.all(s.ids.slice(first).map((id) => s.cleanup(id)));
    });
    try {
      await body(t, s, ids);
    } catch (err) {
      const mine = s.ids.slice(first);
      if (o.logOnFailure !== false) process.stderr.write(`\n${o.dump ? o.dump(s, mine) : s.logFor(...mine)}\n`);
      throw err;
    }
  };
}

/** `ctr events` in the background, subscribed before it resolves; killed by stop() or after the test. */
export async function subscribeEvents(
  t: TestContext,
  s: Suite,
): Promise<{ text(): string; errors(): string; stop(): void }> {
  const ev = s.c.ctrSpawn(['events'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    ev.kill('SIGKILL');
  });
  const out = collect(ev.stdout);
  const err = collect(ev.stderr);
  await until(
    'ctr events to subscribe',
    async () => {
      // a namespace label change is an event of its own: once it shows, ctr is subscribed
      await s.ctrOk(['namespaces', 'label', s.c.namespace, `test.sync=${Date.now()}`]);
      return out.text().includes('/namespaces/update');
    },
    10_000,
    200,
  );
  return { text: () => out.text(), errors: () => err.text(), stop: () => ev.kill('SIGKILL') };
}

/** The suite's leftovers(), with the containerd log lines of its ids printed when there are any. */
export async function leftoversLogged(s: Suite): Promise<string[]> {
  const problems = await s.leftovers();
  if (problems.length) process.stderr.write(`${s.logFor(...s.ids)}\n`);
  return problems;
}
