// docs/errors.md and ERROR_CODES list the same codes, with the same status and exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, GatehouseError } from '../../src/lib/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map<string, string[]>();
for (const line of doc.split('\n')) {
  const m = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|(.*)$/.exec(line);
  if (m)
    rows.set(
      m[1] as string,
      (m[2] as string).split('|').map((c) => c.trim()),
    );
}

test('every code in ERROR_CODES has a row in docs/errors.md', () => {
  const missing = Object.keys(ERROR_CODES).filter((code) => !rows.has(code));
  assert.deepEqual(missing, [], `docs/errors.md lacks rows for: ${missing.join(', ')}`);
});

test('every code docs/errors.md mentions exists in ERROR_CODES', () => {
  const mentioned = new Set(doc.match(/\bERR_[A-Z0-9_]+\b/g) ?? []);
  const unknown = [...mentioned].filter((code) => !(code in ERROR_CODES));
  assert.deepEqual(unknown, [], `docs/errors.md names codes that do not exist: ${unknown.join(', ')}`);
});

test('each row states the status and exit code the code really has', () => {
  const wrong: string[] = [];
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    const cells = rows.get(code);
    if (!cells) continue;
    if (cells[0] !== String(info.status) || cells[1] !== String(info.exit)) {
      wrong.push(`${code} (doc: ${cells[0]}/${cells[1]}, code: ${info.status}/${info.exit})`);
    }
  }
  assert.deepEqual(wrong, [], `docs/errors.md disagrees on status/exit for: ${wrong.join(', ')}`);
});

test('a GatehouseError takes status, expose and exit code from its code', () => {
  const e = new GatehouseError('ERR_CONFIG_INVALID', 'bad');
  assert.equal(e.status, ERROR_CODES.ERR_CONFIG_INVALID.status);
  assert.equal(e.expose, false);
  assert.equal(e.exitCode, 2);
});
