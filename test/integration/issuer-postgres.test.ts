// The issuer integration cases of issuer.test.ts, run again with the store on PostgreSQL (a fresh
// database per Gatehouse): same behaviour on both stores. Skips, saying why, without PostgreSQL.
import { test } from 'node:test';
import { postgresSkipReason } from '../helpers/replicas.js';

const skip = await postgresSkipReason();
if (skip) {
  test('issuer on PostgreSQL', { skip }, () => {});
} else {
  // startTestGatehouse() reads this when a test does not choose a store.
  process.env.GATEHOUSE_TEST_STORE = 'postgres';
  await import('./issuer.test.js');
}
