// Real Chromium for browser tests: Debian's /usr/bin/chromium (package `chromium`), launched headless with
// the flags it needs here, and the dev IdP's sign-in form filled in as a person would.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** `false` when Chromium is there, else the reason a browser test is skipped (for node:test's `skip`). */
export const chromiumSkip: string | false = existsSync(CHROMIUM)
  ? false
  : 'chromium is not installed (/usr/bin/chromium, Debian package chromium)';

/**
 * Launches Chromium. `--no-sandbox` because it runs as root here; background traffic is off so a test
 * sees only its own requests. `ignoreCertificateErrors` is for Gatehouse served with a test's own
 * self-signed certificate. `hostResolverRules` sends test host names to a local server, e.g.
 * `MAP *.example.test 127.0.0.1:PORT` (Chromium's --host-resolver-rules): the browser keeps the names in
 * its URLs, Host headers and cookie scopes, so one Gatehouse can answer as several hosts.
 */
export function launchChromium(
  opts: { ignoreCertificateErrors?: boolean; hostResolverRules?: string } = {},
): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      ...(opts.ignoreCertificateErrors ? ['--ignore-certificate-errors'] : []),
      ...(opts.hostResolverRules ? [`--host-resolver-rules=${opts.hostResolverRules}`] : []),
    ],
  });
}

/** Fills in and submits the dev IdP's sign-in form on the current page; the caller waits for where it lands. */
export async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}
