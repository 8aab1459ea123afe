// Rule sets: deny beats allow, shadow never changes the decision, "no rule matched" names the closest
// rule, every compile problem is reported with its path, and decisions explain themselves in words.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, explainDecision, PolicyError } from '../../../src/policy/index.js';

const NOW = new Date('2024-01-15T10:30:00Z');

// Shaped like GitHub Actions' OIDC token claims.
const gha = {
  iss: 'https://token.actions.githubusercontent.com',
  sub: 'repo:octo/app:ref:refs/heads/feature/x',
  repository: 'octo/app',
  repository_owner: 'octo',
  ref: 'refs/heads/feature/x',
  event_name: 'push',
};

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PolicyError);
    assert.equal(err.code, 'ERR_POLICY_INVALID');
    return [...err.problems];
  }
  assert.fail('expected PolicyError');
}

describe('decisions', () => {
  test('deny beats allow, whatever the order', () => {
    const allowAll = { name: 'org', allow: { claim: 'repository', glob: 'octo/*' } };
    const denyPr = {
      name: 'no-pr',
      deny: { claim: 'event_name', equals: 'pull_request' },
      message: 'pull requests may not deploy',
    };
    for (const rules of [
      [allowAll, denyPr],
      [denyPr, allowAll],
    ]) {
      const p = compilePolicy(rules);
      const ok = p.evaluate({ claims: gha, now: NOW });
      assert.equal(ok.allowed, true);
      assert.equal(ok.effect, 'allow');
      assert.equal(ok.rule, 'org');
      const d = p.evaluate({ claims: { ...gha, event_name: 'pull_request' }, now: NOW });
      assert.equal(d.allowed, false);
      assert.equal(d.effect, 'deny');
      assert.equal(d.rule, 'no-pr');
      assert.equal(d.message, 'pull requests may not deploy');
    }
  });

  test('nothing matching denies, naming the closest rule and the first criterion it failed on', () => {
    const p = compilePolicy([
      {
        name: 'other-org',
        allow: {
          all: [
            { claim: 'repository_owner', equals: 'acme' },
            { claim: 'ref', glob: 'refs/heads/main' },
          ],
        },
      },
      {
        name: 'deploy-main',
        allow: {
          all: [
            { claim: 'repository', glob: 'octo/*' },
            { claim: 'ref', glob: 'refs/heads/main' },
            { claim: 'event_name', equals: 'push' },
          ],
        },
      },
    ]);
    const d = p.evaluate({ claims: gha, now: NOW });
    assert.equal(d.allowed, false);
    assert.equal(d.rule, undefined);
    assert.equal(d.closest?.rule, 'deploy-main');
    assert.equal(d.closest?.failed.criterion, 'claim ref glob');
    assert.equal(d.closest?.failed.path, 'rules[1].allow.all[1].glob');
    assert.equal(d.closest?.failed.expected, 'refs/heads/main');
    assert.equal(d.closest?.failed.actual, 'refs/heads/feature/x');
    // Every enforced rule's criteria are reported.
    assert.equal(d.reasons.filter((r) => r.rule === 'other-org').length, 2);
    assert.equal(d.reasons.filter((r) => r.rule === 'deploy-main').length, 3);
    const text = explainDecision(d);
    assert.match(
      text.split('\n')[0] as string,
      /^denied: no rule matched; closest rule "deploy-main" failed on claim ref: expected glob "refs\/heads\/main", actual "refs\/heads\/feature\/x"$/,
    );
    assert.match(text, /pass {2}claim repository: expected glob "octo\/\*", actual "octo\/app"/);
  });

  test('an unnamed rule is called by its path, and the closest allow rule message is the refusal message', () => {
    const p = compilePolicy([{ allow: { roles: ['admin'] }, message: 'admins only' }], {
      path: 'routes[3].policy',
    });
    const d = p.evaluate({ claims: { roles: ['engineer'] }, now: NOW });
    assert.equal(d.closest?.rule, 'routes[3].policy[0]');
    assert.equal(d.closest?.failed.path, 'routes[3].policy[0].allow.roles');
    assert.equal(d.message, 'admins only');
  });

  test('a policy with only deny rules denies', () => {
    const d = compilePolicy([{ deny: { claim: 'x', exists: true } }]).evaluate({ claims: {}, now: NOW });
    assert.equal(d.allowed, false);
    assert.match(explainDecision(d), /no rule matched/);
  });

  test('evaluate({ only }) considers one rule', () => {
    const p = compilePolicy([
      { name: 'a', allow: { claim: 'x', equals: 1 } },
      { name: 'b', allow: { claim: 'x', equals: 2 } },
    ]);
    assert.deepEqual(p.ruleNames, ['a', 'b']);
    assert.equal(p.evaluate({ claims: { x: 1 }, now: NOW }, { only: 'b' }).allowed, false);
    assert.equal(p.evaluate({ claims: { x: 2 }, now: NOW }, { only: 'b' }).rule, 'b');
  });

  test('no exception escapes evaluate: bad input is a denial with its reason', () => {
    const p = compilePolicy([{ allow: { claim: 'x', exists: true } }]);
    const d = p.evaluate({ claims: null, now: NOW } as never);
    assert.equal(d.allowed, false);
    assert.match(d.reasons[0]?.message ?? '', /internal error/);
    assert.equal(p.evaluate({ claims: { x: 1 }, now: new Date(NaN) }).allowed, false);
  });
});

describe('shadow rules', () => {
  test('a shadow deny reports would-deny and never changes an allow', () => {
    const p = compilePolicy([
      { name: 'org', allow: { claim: 'repository', glob: 'octo/*' } },
      { name: 'main-only', mode: 'shadow', deny: { not: { claim: 'ref', equals: 'refs/heads/main' } } },
    ]);
    const d = p.evaluate({ claims: gha, now: NOW });
    assert.equal(d.allowed, true);
    assert.equal(d.rule, 'org');
    assert.equal(d.shadow.length, 1);
    assert.equal(d.shadow[0]?.rule, 'main-only');
    assert.equal(d.shadow[0]?.matched, true);
    assert.equal(d.shadow[0]?.wouldDeny, true);
    assert.ok((d.shadow[0]?.reasons.length ?? 0) > 0);
    // Shadow reasons stay out of the enforced reasons.
    assert.ok(d.reasons.every((r) => r.rule !== 'main-only'));
    assert.match(explainDecision(d), /shadow deny rule "main-only": would deny/);
  });

  test('a shadow allow reports would-allow and never changes a denial', () => {
    const p = compilePolicy([
      { name: 'admins', allow: { roles: ['admin'] } },
      { name: 'engineers', mode: 'shadow', allow: { roles: ['engineer'] } },
    ]);
    const d = p.evaluate({ claims: { roles: ['engineer'] }, now: NOW });
    assert.equal(d.allowed, false);
    assert.equal(d.closest?.rule, 'admins');
    assert.equal(d.shadow[0]?.wouldAllow, true);
    assert.equal(d.shadow[0]?.wouldDeny, false);
  });

  test('a shadow allow never counts as the closest rule, and shadow rules alone allow nothing', () => {
    const d = compilePolicy([{ name: 's', mode: 'shadow', allow: { claim: 'sub', exists: true } }]).evaluate({
      claims: { sub: 'x' },
      now: NOW,
    });
    assert.equal(d.allowed, false);
    assert.equal(d.closest, undefined);
    assert.equal(d.shadow[0]?.wouldAllow, true);
  });
});

describe('compile problems', () => {
  test('every problem is reported, each with its path', () => {
    const problems = problemsOf(() =>
      compilePolicy([
        {
          name: 'a',
          allow: {
            all: [
              { claim: 'ref', glob: 7 },
              { claim: 'x', regex: '(a' },
            ],
          },
        },
        { name: 'a', deny: { roles: [] } },
        { alow: { claim: 'x', exists: true } },
        { allow: { claim: 'x' } },
        { allow: {} },
        { allow: { clam: 'x', equals: 1 } },
        { allow: { source_ip: ['10.0.0.1/8', 'nope'] } },
        { allow: { time: { after: '25:00', days: ['funday'], tz: 'Mars/Base' } } },
        { allow: { claim: 'x', gt: 'yesterday' } },
        { allow: { claim: 'a..b', exists: true } },
        { allow: { claim: '/a~2', exists: true } },
        { allow: { claim: 'x', exists: true }, deny: { claim: 'y', exists: true } },
        { allow: { claim: 'x', exists: true }, mode: 'dry-run' },
      ]),
    );
    const paths = problems.map((p) => p.path);
    for (const path of [
      'rules[0].allow.all[0].glob',
      'rules[0].allow.all[1].regex',
      'rules[1].name',
      'rules[1].deny.roles',
      'rules[2].alow',
      'rules[3].allow',
      'rules[4].allow',
      'rules[5].allow.clam',
      'rules[5].allow.equals',
      'rules[6].allow.source_ip[0]',
      'rules[6].allow.source_ip[1]',
      'rules[7].allow.time.after',
      'rules[7].allow.time.days',
      'rules[7].allow.time.tz',
      'rules[8].allow.gt',
      'rules[9].allow.claim',
      'rules[10].allow.claim',
      'rules[11]',
      'rules[12].mode',
    ]) {
      assert.ok(paths.includes(path), `missing problem at ${path}; got ${paths.join(', ')}`);
    }
    const msg = (path: string) => problems.find((p) => p.path === path)?.message ?? '';
    assert.match(msg('rules[2].alow'), /did you mean "allow"/);
    assert.match(msg('rules[5].allow.clam'), /did you mean "claim"/);
    assert.match(msg('rules[0].allow.all[1].regex'), /invalid RE2 regex/);
    assert.match(msg('rules[4].allow'), /empty/);
  });

  test('a policy must be a list', () => {
    assert.deepEqual(
      problemsOf(() => compilePolicy({ allow: {} }, { path: 'trust_rules[0].conditions' })).map(
        (p) => p.path,
      ),
      ['trust_rules[0].conditions'],
    );
  });
});

describe('explanations', () => {
  test('allowed and denied-by-rule read in plain words', () => {
    const p = compilePolicy([
      { name: 'gitlab-protected', allow: { claim: 'ref_protected', equals: true } },
      {
        name: 'blocked',
        deny: { claim: 'project_path', glob: 'sandbox/**' },
        message: 'sandbox projects cannot deploy',
      },
    ]);
    const refused = explainDecision(
      p.evaluate({ claims: { ref_protected: 'true', project_path: 'team/app' }, now: NOW }),
    );
    assert.match(
      refused,
      /closest rule "gitlab-protected" failed on claim ref_protected: expected true, actual "true"/,
    );
    assert.match(refused, /true \(boolean\) ≠ "true" \(string\)/);
    const blocked = explainDecision(
      p.evaluate({ claims: { ref_protected: true, project_path: 'sandbox/x' }, now: NOW }),
    );
    assert.match(
      blocked.split('\n')[0] as string,
      /^denied by rule "blocked": sandbox projects cannot deploy$/,
    );
    const ok = explainDecision(
      p.evaluate({ claims: { ref_protected: true, project_path: 'team/app' }, now: NOW }),
    );
    assert.match(ok.split('\n')[0] as string, /^allowed by rule "gitlab-protected"$/);
  });

  test('decisions are plain JSON', () => {
    const p = compilePolicy([{ allow: { all: [{ cel: 'claims.n + 1 > 2' }, { claim: 'n', gt: 1 }] } }]);
    const d = p.evaluate({ claims: { n: 5 }, now: NOW });
    assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
  });
});
