// Claim mapping in one place: an upstream IdP's ID token and userinfo claims become a Gatehouse person
// (subject, email, name, groups, roles). Pure: no I/O, so every IdP shape is tested the same way.
import type { ClaimMapping } from '../config/schema.js';
import { GatehouseError } from '../lib/errors.js';
import { isGlob, matchGlob } from '../policy/glob.js';

/** A person as Gatehouse knows them after mapping. */
export interface Person {
  sub: string;
  email?: string;
  emailVerified?: boolean;
  name?: string;
  groups: string[];
  roles: string[];
}

/** Role name → the groups (globs) that grant it (the config's `roles:`). */
export type RoleTable = Record<string, string[]>;

/** The value at a dotted path (`realm_access.roles`, `resource_access.jira.roles`), or undefined. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(claims, path)) return claims[path];
  let cur: unknown = claims;
  for (const seg of path.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return v ? [v] : [];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x !== '');
  return [];
}

function rewrite(values: string[], mapping: ClaimMapping): string[] {
  return values.map((v) => {
    let out = v;
    for (const p of mapping.strip_prefix) {
      if (p && out.startsWith(p)) {
        out = out.slice(p.length);
        break;
      }
    }
    return Object.prototype.hasOwnProperty.call(mapping.rename, out) ? (mapping.rename[out] as string) : out;
  });
}

/**
 * Entra ID puts `_claim_names: { groups: "src1" }` in place of `groups` when a person is in more groups
 * than fit in a token (the overage). Treating that as "no groups" would silently drop roles.
 */
export function hasGroupsOverage(claims: Record<string, unknown>): boolean {
  const names = claims._claim_names;
  return (
    !!names &&
    typeof names === 'object' &&
    Object.prototype.hasOwnProperty.call(names, 'groups') &&
    claims.groups === undefined
  );
}

/** Maps claims to a person, or throws a coded error that says what is wrong and how to fix it. */
export function mapClaims(
  claims: Record<string, unknown>,
  mapping: ClaimMapping,
  roleTable: RoleTable,
  connectorId: string,
): Person {
  if (hasGroupsOverage(claims)) {
    throw new GatehouseError(
      'ERR_LOGIN_GROUPS_OVERAGE',
      `the IdP of connector "${connectorId}" sent a groups overage (_claim_names.groups) instead of the person's groups: they are in too many groups to fit in a token`,
      {
        field: 'groups',
        hint: 'in Entra ID, set the app registration\'s groups claim to "Groups assigned to the application" (or filter groups), or map app roles with mapping.roles: [roles]',
      },
    );
  }
  const rawSub = claimAt(claims, mapping.subject);
  if (typeof rawSub !== 'string' || rawSub === '') {
    throw new GatehouseError(
      'ERR_LOGIN_CLAIMS_REFUSED',
      `connector "${connectorId}": the claim "${mapping.subject}" (mapping.subject) is missing or not a string`,
      { field: mapping.subject },
    );
  }
  const email = claimAt(claims, mapping.email);
  const verified = claims.email_verified;
  const emailVerified = verified === true || verified === 'true';
  if (typeof email === 'string' && mapping.require_email_verified && !emailVerified) {
    throw new GatehouseError(
      'ERR_LOGIN_CLAIMS_REFUSED',
      `connector "${connectorId}": the email ${email} is not verified by the IdP (email_verified is ${JSON.stringify(verified ?? null)})`,
      {
        field: 'email_verified',
        hint: 'verify the address at the IdP, or set mapping.require_email_verified: false for an IdP that never sends it',
      },
    );
  }
  const name = claimAt(claims, mapping.name);
  const groups = new Set<string>();
  for (const path of mapping.groups)
    for (const g of rewrite(strings(claimAt(claims, path)), mapping)) groups.add(g);
  const roles = new Set<string>();
  for (const path of mapping.roles)
    for (const r of rewrite(strings(claimAt(claims, path)), mapping)) roles.add(r);
  for (const [role, patterns] of Object.entries(roleTable)) {
    if (patterns.some((p) => [...groups].some((g) => (isGlob(p) ? matchGlob(p, g) : p === g))))
      roles.add(role);
  }
  return {
    sub: mapping.subject_prefix + rawSub,
    ...(typeof email === 'string' ? { email, emailVerified } : {}),
    ...(typeof name === 'string' ? { name } : {}),
    groups: [...groups].sort(),
    roles: [...roles].sort(),
  };
}

/** True when the ID token lacks what the mapping reads, so userinfo is worth asking (`userinfo: auto`). */
export function looksThin(claims: Record<string, unknown>, mapping: ClaimMapping): boolean {
  if (claimAt(claims, mapping.email) === undefined) return true;
  if (mapping.groups.length && mapping.groups.every((p) => claimAt(claims, p) === undefined))
    return !hasGroupsOverage(claims);
  return false;
}
