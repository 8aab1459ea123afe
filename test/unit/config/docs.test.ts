// docs/configuration.md documents every key of the schema (and no key the schema lacks), and its
// complete example is examples/gatehouse.yaml, which must load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { listKeys } from '../../../src/config/schema-walk.js';

const root = new URL('../../../', import.meta.url).pathname;
const doc = readFileSync(join(root, 'docs/configuration.md'), 'utf8');
const example = readFileSync(join(root, 'examples/gatehouse.yaml'), 'utf8');
const keys = listKeys(configSchema);

test('the schema walk reaches nested keys as dotted paths', () => {
  for (const k of ['issuer.url', 'store.sqlite.path', 'clients[].allowed_audiences', 'log.format']) {
    assert.ok(keys.includes(k), `listKeys lacks ${k}`);
  }
});

test('every key of the schema is documented in docs/configuration.md', () => {
  const missing = keys.filter((k) => !doc.includes(`\`${k}\``));
  assert.deepEqual(missing, [], `docs/configuration.md does not document: ${missing.join(', ')}`);
});

test('every key the key tables document exists in the schema', () => {
  const section = doc.slice(doc.indexOf('## Keys'), doc.indexOf('\n## ', doc.indexOf('## Keys') + 1));
  const documented = [...section.matchAll(/^\|\s*`([^`]+)`\s*\|/gm)].map((m) => m[1] as string);
  assert.ok(documented.length >= keys.length);
  const unknown = documented.filter((k) => !keys.includes(k));
  assert.deepEqual(
    unknown,
    [],
    `docs/configuration.md documents keys the schema lacks: ${unknown.join(', ')}`,
  );
});

test('the complete example in the doc is examples/gatehouse.yaml', () => {
  const block = /## Complete example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.equal(block, example);
});

test('examples/gatehouse.yaml loads, with its key-encryption key from a file beside it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-example-'));
  copyFileSync(join(root, 'examples/gatehouse.yaml'), join(dir, 'gatehouse.yaml'));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets/kek'), 'q8Vd7sLx0cRz3TnWf1yHb5KpM2aEjG9uXo4iNeC6AQs\n');
  const { config } = await loadConfig(join(dir, 'gatehouse.yaml'), { env: {} });
  assert.equal(config.clients.length, 2);
  assert.equal(config.store.sqlite?.path, join(dir, 'data/gatehouse.db'));
});
