// The flood guard: refusals of unauthenticated requests get their own audit record within a budget per
// address and overall; past it they are counted into one summary per address, type and code, written
// when its window closes under the id the refused clients were shown. Frozen clock, recording sink.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FloodGuard, redactUntrusted, assertNoSecrets } from '../../../src/audit/index.js';

interface Written {
  type: string;
  data: Record<string, unknown>;
  id: string;
}

function recordingSink(fail = false) {
  const written: Written[] = [];
  let n = 0;
  return {
    written,
    async append(type: string, data: Record<string, unknown>, opts?: { id?: string }) {
      if (fail) throw new Error('store down');
      const id = opts?.id ?? `a_${String(++n).padStart(16, '0')}`;
      written.push({ type, data, id });
      return { id, seq: written.length };
    },
  };
}

function guard(
  sink: ReturnType<typeof recordingSink>,
  clock: { now: number },
  perAddress = { per_minute: 60, burst: 3 },
  overall = { per_minute: 600, burst: 100 },
  extra: { maxSummaries?: number } = {},
) {
  return new FloodGuard({
    sink,
    settings: { per_address: perAddress, overall },
    now: () => clock.now,
    windowMs: 60_000,
    ...extra,
  });
}

const denied = (path: string) => ({ route: 'app', path, reason: 'no_credentials' });

describe('FloodGuard', () => {
  test('within the budget every refusal is its own record, under the id asked for', async () => {
    const sink = recordingSink();
    const g = guard(sink, { now: 0 });
    const r = await g.append('access.denied', denied('/a'), '192.0.2.1', { id: 'a_AAAAAAAAAAAAAAAA' });
    assert.deepEqual(r, { id: 'a_AAAAAAAAAAAAAAAA', written: true });
    await g.append('access.denied', denied('/b'), '192.0.2.1');
    assert.equal(sink.written.length, 2);
    assert.equal(sink.written[0]?.data.path, '/a');
    await g.close();
  });

  test('past the address budget refusals share one summary, written when the window closes', async () => {
    const sink = recordingSink();
    const clock = { now: 1_000 };
    const g = guard(sink, clock);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await g.append('access.denied', denied(`/p${i}`), '192.0.2.1');
      ids.push(r.id);
      clock.now += 10;
    }
    // Three own records (the burst), then seven counted.
    assert.equal(sink.written.length, 3);
    const summaryId = ids[3] as string;
    assert.ok(
      ids.slice(3).every((id) => id === summaryId),
      'every coalesced refusal is shown the same id',
    );
    assert.equal(g.pending, 7);
    // Not before the window closes…
    await g.flush();
    assert.equal(sink.written.length, 3);
    // …then once, under the id the clients were shown, reading like the first coalesced refusal.
    clock.now += 60_000;
    await g.flush();
    assert.equal(sink.written.length, 4);
    const s = sink.written[3] as Written;
    assert.equal(s.id, summaryId);
    assert.equal(s.type, 'access.denied');
    assert.equal(s.data.path, '/p3');
    assert.equal(s.data.reason, 'no_credentials');
    assert.deepEqual(s.data.coalesced, { count: 7, from: 1_030, to: 1_090 });
    assert.equal(g.pending, 0);
    await g.close();
    assert.equal(sink.written.length, 4, 'nothing left to write on close');
  });

  test('another address keeps its own budget; the address refills at per_minute', async () => {
    const sink = recordingSink();
    const clock = { now: 0 };
    const g = guard(sink, clock, { per_minute: 60, burst: 1 });
    assert.equal((await g.append('access.denied', denied('/'), '192.0.2.1')).written, true);
    assert.equal((await g.append('access.denied', denied('/'), '192.0.2.1')).written, false);
    assert.equal((await g.append('access.denied', denied('/'), '198.51.100.7')).written, true);
    clock.now += 1_000; // 60 a minute: one more after a second
    assert.equal((await g.append('access.denied', denied('/'), '192.0.2.1')).written, true);
    await g.close();
  });

  test('summaries are kept apart by type and code', async () => {
    const sink = recordingSink();
    const g = guard(sink, { now: 0 }, { per_minute: 1, burst: 1 });
    await g.append('token.refused', { code: 'invalid_client' }, '192.0.2.1');
    const a = await g.append('token.refused', { code: 'invalid_client' }, '192.0.2.1');
    const b = await g.append('token.refused', { code: 'invalid_request' }, '192.0.2.1');
    const c = await g.append('access.denied', { reason: 'no_credentials' }, '192.0.2.1');
    assert.equal(new Set([a.id, b.id, c.id]).size, 3);
    await g.close();
    const summaries = sink.written.filter((w) => w.data.coalesced);
    assert.deepEqual(summaries.map((w) => [w.type, w.data.code ?? w.data.reason]).sort(), [
      ['access.denied', 'no_credentials'],
      ['token.refused', 'invalid_client'],
      ['token.refused', 'invalid_request'],
    ]);
  });

  test('many addresses: the overall budget holds, and summaries past maxSummaries share one for "*"', async () => {
    const sink = recordingSink();
    const g = guard(
      sink,
      { now: 0 },
      { per_minute: 60, burst: 5 },
      { per_minute: 60, burst: 10 },
      {
        maxSummaries: 3,
      },
    );
    for (let i = 0; i < 50; i++) await g.append('access.denied', denied('/'), `10.0.0.${i}`);
    assert.equal(sink.written.length, 10, 'the overall burst');
    await g.close();
    const summaries = sink.written.filter((w) => w.data.coalesced);
    // Three addresses with their own summary, then everything else in one.
    assert.equal(summaries.length, 4);
    const star = summaries.find((w) => w.data.source_ip === '*');
    assert.equal((star?.data.coalesced as { count: number }).count, 37);
    const total = summaries.reduce((n, w) => n + (w.data.coalesced as { count: number }).count, 0);
    assert.equal(total + 10, 50, 'every refusal is in exactly one record');
  });

  test('a failed own record rejects (the caller decides); a failed summary is logged, not thrown', async () => {
    const sink = recordingSink(true);
    const errors: unknown[] = [];
    const g = new FloodGuard({
      sink,
      settings: { per_address: { per_minute: 1, burst: 1 }, overall: { per_minute: 100 } },
      now: () => 0,
      logger: { error: (o: unknown) => errors.push(o), warn: () => {}, info: () => {} } as never,
    });
    await assert.rejects(g.append('access.denied', denied('/'), '192.0.2.1'), /store down/);
    const r = await g.append('access.denied', denied('/'), '192.0.2.1');
    assert.equal(r.written, false);
    await g.close();
    assert.equal(errors.length, 1);
  });

  test('configure swaps the budgets', async () => {
    const sink = recordingSink();
    const g = guard(sink, { now: 0 }, { per_minute: 1, burst: 1 });
    await g.append('access.denied', denied('/'), '192.0.2.1');
    assert.equal((await g.append('access.denied', denied('/'), '192.0.2.1')).written, false);
    g.configure({ per_address: { per_minute: 100, burst: 100 }, overall: { per_minute: 100, burst: 100 } });
    assert.equal((await g.append('access.denied', denied('/'), '192.0.2.1')).written, true);
    await g.close();
  });
});

describe('redactUntrusted', () => {
  const jws = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl';

  test('a token inside a request value becomes a hash prefix, and the result passes the secret guard', () => {
    const path = `/verify/${jws}/next`;
    assert.throws(() => assertNoSecrets({ path }), TypeError);
    const clean = redactUntrusted(path);
    assert.match(clean, /^\/verify\/\[token sha256:[0-9a-f]{16}\]\/next$/);
    assert.ok(!clean.includes('eyJ'));
    assertNoSecrets({ path: clean });
  });

  test('the same token gives the same hash (records can be correlated), plain values are kept', () => {
    assert.equal(redactUntrusted(jws), redactUntrusted(jws));
    assert.equal(redactUntrusted('/app/x?y=1'), '/app/x?y=1');
  });

  test('long values are cut', () => {
    const v = redactUntrusted('x'.repeat(5000), 100);
    assert.equal(v, `${'x'.repeat(100)}…`);
  });
});
