// The strict JSON reader agrees with JSON.parse on valid JSON, and refuses duplicates and non-JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StrictJsonError, parseStrictJson } from '../../../src/tokens/strict-json.js';

test('reads what JSON.parse reads, into null-prototype objects', () => {
  for (const text of [
    '{}',
    '[]',
    ' {"a" : [1, -2.5e3, true, false, null, "x\\u00e9\\n\\"\\/"], "b": {"c": {}}} ',
    '"\\ud83d\\ude00"',
    '0',
    '{"__proto__": {"x": 1}}',
  ]) {
    assert.deepEqual(
      JSON.parse(JSON.stringify(parseStrictJson(text))),
      JSON.parse(JSON.stringify(JSON.parse(text))),
    );
  }
  const o = parseStrictJson('{"__proto__": {"x": 1}}') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(o), null);
  assert.deepEqual(Object.keys(o), ['__proto__']);
});

test('refuses duplicate member names at any depth, naming the key', () => {
  for (const [text, key] of [
    ['{"a":1,"a":2}', 'a'],
    ['{"x":{"b":1,"b":1}}', 'b'],
    ['[{"c":1,"\\u0063":2}]', 'c'],
  ] as const) {
    assert.throws(
      () => parseStrictJson(text),
      (e) => e instanceof StrictJsonError && e.reason === 'duplicate-key' && e.key === key,
    );
  }
});

test('refuses what is not exactly one JSON value', () => {
  for (const text of [
    '',
    '{',
    '{"a":1,}',
    '[1,]',
    "{'a':1}",
    '01',
    '1.',
    'NaN',
    '{"a":1} x',
    '"\u0001"',
    '"\\x"',
    'tru',
  ]) {
    assert.throws(() => parseStrictJson(text), StrictJsonError, text);
  }
  assert.throws(
    () => parseStrictJson('['.repeat(100) + ']'.repeat(100)),
    (e) => e instanceof StrictJsonError && e.reason === 'too-deep',
  );
});
