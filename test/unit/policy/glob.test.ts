// The one glob definition (DESIGN.md): `*` within a segment, `**` across, everything else literal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchGlob } from '../../../src/policy/glob.js';

test('every character other than * is literal, including regex syntax and a dash', () => {
  assert.equal(matchGlob('ci-*', 'ci-deploy'), true, 'a dash in a pattern used to make the RegExp throw');
  assert.equal(matchGlob('https://api-x.example.com/**', 'https://api-x.example.com/v1/a'), true);
  assert.equal(matchGlob('a.b', 'axb'), false);
  assert.equal(matchGlob('x[1]+(y)?', 'x[1]+(y)?'), true);
  assert.equal(matchGlob('a\\b', 'a\\b'), true);
  assert.equal(matchGlob('$^{}|', '$^{}|'), true);
});

test('* never crosses / or :, ** does, and matching is anchored and case-sensitive', () => {
  assert.equal(matchGlob('repo:org/*', 'repo:org/app'), true);
  assert.equal(matchGlob('repo:org/*', 'repo:org/app:ref:refs/heads/main'), false);
  assert.equal(matchGlob('repo:org/*', 'repo:org/app/x'), false);
  assert.equal(matchGlob('repo:org/**', 'repo:org/app:ref:refs/heads/main'), true);
  assert.equal(matchGlob('app', 'xapp'), false);
  assert.equal(matchGlob('app', 'APP'), false);
});
