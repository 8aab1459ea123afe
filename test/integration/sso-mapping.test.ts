// Claim mapping with tokens shaped like Keycloak's, Entra ID's and Okta's: nested claims, prefix strip,
// rename table, groups→roles; email_verified required; Entra's groups overage refused with its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { claimMappingSchema } from '../../src/config/schema.js';
import { mapClaims } from '../../src/federation/role-mapping.js';
import { isGatehouseError, type GatehouseError } from '../../src/lib/errors.js';

const roles = { admin: ['admins'], engineer: ['engineering', 'eng*'], 'platform-team': ['platform-admins'] };

test('Keycloak: realm_access.roles and resource_access.<client>.roles, leading / stripped from groups', () => {
  const mapping = claimMappingSchema.parse({
    groups: ['groups', 'realm_access.roles', 'resource_access.gatehouse.roles'],
    strip_prefix: ['/'],
  });
  const p = mapClaims(
    {
      sub: 'f3a1-uuid',
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice',
      groups: ['/admins'],
      realm_access: { roles: ['offline_access', 'engineering'] },
      resource_access: { gatehouse: { roles: ['eng-platform'] }, other: { roles: ['nope'] } },
    },
    mapping,
    roles,
    'keycloak',
  );
  assert.equal(p.sub, 'f3a1-uuid');
  assert.deepEqual(p.groups, ['admins', 'eng-platform', 'engineering', 'offline_access']);
  assert.deepEqual(p.roles, ['admin', 'engineer']);
});

test('Entra ID: group object ids renamed, app roles taken as roles, subject prefixed', () => {
  const mapping = claimMappingSchema.parse({
    subject: 'oid',
    subject_prefix: 'entra:',
    email: 'preferred_username',
    roles: ['roles'],
    rename: { '6a1f0c2e-0000-4000-8000-000000000001': 'admins' },
    require_email_verified: false,
  });
  const p = mapClaims(
    {
      sub: 'pairwise-sub',
      oid: '00000000-aaaa-bbbb-cccc-000000000042',
      preferred_username: 'alice@contoso.com',
      groups: ['6a1f0c2e-0000-4000-8000-000000000001', 'unmapped-guid'],
      roles: ['Gatehouse.Reader'],
    },
    mapping,
    roles,
    'entra',
  );
  assert.equal(p.sub, 'entra:00000000-aaaa-bbbb-cccc-000000000042');
  assert.equal(p.email, 'alice@contoso.com');
  assert.deepEqual(p.roles, ['Gatehouse.Reader', 'admin']);
});

test('Entra ID groups overage (_claim_names.groups) is refused with what happened and how to fix it', () => {
  const mapping = claimMappingSchema.parse({ require_email_verified: false });
  assert.throws(
    () =>
      mapClaims(
        {
          sub: 's',
          _claim_names: { groups: 'src1' },
          _claim_sources: { src1: { endpoint: 'https://graph.windows.net/x/users/y/getMemberObjects' } },
        },
        mapping,
        roles,
        'entra',
      ),
    (e: unknown) => {
      assert.ok(isGatehouseError(e, 'ERR_LOGIN_GROUPS_OVERAGE'));
      assert.match((e as GatehouseError).message, /overage/);
      assert.match(String((e as GatehouseError).details.hint), /Groups assigned to the application/);
      return true;
    },
  );
});

test('Okta: groups claim with an okta- prefix stripped and a rename table', () => {
  const mapping = claimMappingSchema.parse({
    strip_prefix: ['okta-'],
    rename: { 'platform-admins': 'admins' },
  });
  const p = mapClaims(
    {
      sub: '00u1',
      email: 'bob@example.com',
      email_verified: true,
      groups: ['okta-platform-admins', 'Everyone'],
    },
    mapping,
    roles,
    'okta',
  );
  assert.deepEqual(p.groups, ['Everyone', 'admins']);
  assert.deepEqual(p.roles, ['admin']);
});

test('an unverified email is refused unless the mapping turns the check off', () => {
  const claims = { sub: 'x', email: 'mallory@example.com', email_verified: false };
  assert.throws(
    () => mapClaims(claims, claimMappingSchema.parse({}), roles, 'c'),
    (e: unknown) => isGatehouseError(e, 'ERR_LOGIN_CLAIMS_REFUSED'),
  );
  const p = mapClaims(claims, claimMappingSchema.parse({ require_email_verified: false }), roles, 'c');
  assert.equal(p.email, 'mallory@example.com');
});

test('a missing subject claim is refused with the claim named', () => {
  assert.throws(
    () => mapClaims({ email: 'a@b' }, claimMappingSchema.parse({ subject: 'oid' }), roles, 'c'),
    (e: unknown) => isGatehouseError(e, 'ERR_LOGIN_CLAIMS_REFUSED') && e.details.field === 'oid',
  );
});
