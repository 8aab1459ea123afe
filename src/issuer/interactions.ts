// Gatehouse as the IdP of downstream apps and of the CLI's device flow: the provider's login interaction
// sends the person through connector sign-in (src/session) and resumes; first-party apps skip consent;
// a provider session lives only as long as the sign-in session behind it. Also the device-flow pages
// and the refusal of a wrong redirect URI (audited with the asked and registered URIs, never redirected).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { IssuerContext } from './context.js';
import type { Issuer } from './issuer.js';
import type { SsoBrowserAuth } from '../session/browser-auth.js';
import { escapeHtml, readForm, sendHtml } from '../session/html.js';
import { downstreamClient } from './accounts.js';

const INTERACTION_PATH = '/.gatehouse/interaction/';

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title><style>body{font:16px system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em}button,input{font:inherit;padding:.4em .8em}</style><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

/** True for apps that need no consent screen: the CLI and downstream clients marked first_party. */
export function isFirstParty(ic: IssuerContext, clientId: string): boolean {
  if (clientId === 'gatehouse-cli') return true;
  return downstreamClient(ic, clientId)?.first_party ?? false;
}

/** The provider configuration for people: interactions, consent, device flow, PKCE, errors. */
export function peopleConfiguration(ic: IssuerContext): Partial<Configuration> {
  const policy = interactionPolicy.base();
  const login = policy.get('login');
  // The provider's own session must not outlive the sign-in session it came from: sign-out or
  // `gatehouse revoke session|subject` ends both.
  login?.checks.add(
    new interactionPolicy.Check(
      'gatehouse_session',
      'the Gatehouse sign-in session ended or belongs to someone else',
      async (ctx: KoaContextWithOIDC) => {
        const sso = ic.sso;
        if (!sso) return interactionPolicy.Check.REQUEST_PROMPT;
        const who = await sso.identify(ctx.req);
        return who && who.sub === ctx.oidc.session?.accountId
          ? interactionPolicy.Check.NO_NEED_TO_PROMPT
          : interactionPolicy.Check.REQUEST_PROMPT;
      },
    ),
  );
  return {
    interactions: {
      policy,
      url: (_ctx, interaction) => `${INTERACTION_PATH}${interaction.uid}`,
    },
    loadExistingGrant: async (ctx) => {
      const clientId = ctx.oidc.client?.clientId ?? '';
      const accountId = ctx.oidc.session?.accountId ?? '';
      const grantId =
        (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId ??
        ctx.oidc.session?.grantIdFor(clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (!isFirstParty(ic, clientId) || !accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId });
      grant.addOIDCScope(String(ctx.oidc.client?.scope ?? 'openid offline_access'));
      await grant.save();
      return grant;
    },
    pkce: {
      required: (_ctx, client) => downstreamClient(ic, client.clientId)?.require_pkce ?? true,
    },
    conformIdTokenClaims: false,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  };
}

/** Device flow (RFC 8628) pages: enter the code, confirm it, done. */
export const deviceFlowFeature = {
  enabled: true,
  charset: 'base-20' as const,
  mask: '****-****',
  userCodeInputSource: async (ctx: KoaContextWithOIDC, form: string, _out?: unknown, err?: unknown) => {
    const msg = err ? '<p>That code is not valid or has expired. Try again.</p>' : '';
    ctx.body = page(
      'Sign in a device',
      `${msg}<p>Enter the code the command line shows.</p>${form}<p><button type="submit" form="op.deviceInputForm">Continue</button></p>`,
    );
  },
  userCodeConfirmSource: async (
    ctx: KoaContextWithOIDC,
    form: string,
    client: { clientName?: string; clientId: string },
    _deviceInfo: unknown,
    userCode: string,
  ) => {
    ctx.body = page(
      'Sign in a device',
      `<p>Allow <b>${escapeHtml(client.clientName ?? client.clientId)}</b> with code <code>${escapeHtml(userCode)}</code> to act as you? Only continue if the command line you started shows this code.</p>${form}<p><button type="submit" form="op.deviceConfirmForm">Allow</button> <button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Cancel</button></p>`,
    );
  },
  successSource: async (ctx: KoaContextWithOIDC) => {
    ctx.body = page('Device signed in', '<p>You can close this window and return to the command line.</p>');
  },
};

/**
 * A refused authorization request (wrong redirect URI above all) is shown, never redirected; the asked
 * and registered redirect URIs go to the audit log for the operator. Returns the audit id.
 */
export async function auditAuthorizationError(
  ic: IssuerContext,
  ctx: KoaContextWithOIDC,
  out: { error?: unknown; error_description?: unknown },
): Promise<string | undefined> {
  const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
  const clientId =
    ctx.oidc?.client?.clientId ?? (typeof params.client_id === 'string' ? params.client_id : null);
  if (!clientId && !params.redirect_uri) return undefined;
  try {
    const { id } = await ic.audit.append('authorization.refused', {
      client_id: clientId,
      error: String(out.error ?? ''),
      description: String(out.error_description ?? ''),
      ...(out.error === 'invalid_redirect_uri'
        ? {
            redirect_uri: String(params.redirect_uri ?? ''),
            registered: ctx.oidc?.client?.redirectUris ?? [],
          }
        : {}),
    });
    return id;
  } catch {
    return undefined;
  }
}

/** Serves /.gatehouse/interaction/<uid>: sends the person to sign in, then resumes the provider. */
export class Interactions {
  readonly #issuer: Issuer;
  readonly #sso: SsoBrowserAuth;
  readonly #public: URL;

  constructor(issuer: Issuer, sso: SsoBrowserAuth) {
    this.#issuer = issuer;
    this.#sso = sso;
    this.#public = new URL(issuer.context.config.issuer.url);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const provider = this.#issuer.provider;
    // As for the provider itself: scheme and host are the public URL's, whatever the request says.
    for (const h of Object.keys(req.headers))
      if (h.startsWith('x-forwarded-') || h === 'forwarded') delete req.headers[h];
    req.headers.host = this.#public.host;
    req.headers['x-forwarded-host'] = this.#public.host;
    req.headers['x-forwarded-proto'] = this.#public.protocol.slice(0, -1);
    let details: Awaited<ReturnType<typeof provider.interactionDetails>>;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      return sendHtml(
        res,
        400,
        'Sign-in expired',
        '<p>This sign-in has expired or was already finished. Go back to the application and start again.</p>',
      );
    }
    const uid = details.uid;
    const who = await this.#sso.identify(req);
    if (details.prompt.name === 'login') {
      if (!who) {
        const back = `${this.#public.origin}${INTERACTION_PATH}${uid}`;
        return this.#sso.startLogin(req, res, back);
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: who.sub, ts: Math.floor(Date.now() / 1000) } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (details.prompt.name === 'consent') {
      if (!who || who.sub !== details.session?.accountId) {
        return this.#sso.startLogin(req, res, `${this.#public.origin}${INTERACTION_PATH}${uid}`);
      }
      const clientId = String(details.params.client_id);
      const ic = this.#issuer.context;
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (!isFirstParty(ic, clientId)) {
        if (req.method !== 'POST') {
          const client = await provider.Client.find(clientId);
          return sendHtml(
            res,
            200,
            'Allow access?',
            `<p><b>${escapeHtml(client?.clientName ?? clientId)}</b> asks for: ${escapeHtml((missing.missingOIDCScope ?? []).join(', '))}.</p><form method="post"><input type="hidden" name="csrf" value="${escapeHtml(this.#sso.csrfFor(who))}"><button name="allow" value="yes">Allow</button> <button name="allow" value="no">Deny</button></form>`,
          );
        }
        const form = await readForm(req);
        if (!this.#sso.checkCsrfFor(who, form.get('csrf'))) {
          return sendHtml(res, 403, 'Refused', "<p>The consent form was not this browser's (CSRF).</p>");
        }
        if (form.get('allow') !== 'yes') {
          await provider.interactionFinished(
            req,
            res,
            { error: 'access_denied', error_description: 'the person did not allow access' },
            { mergeWithLastSubmission: false },
          );
          return;
        }
      }
      const grant =
        (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ??
        new provider.Grant({ accountId: who.sub, clientId });
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    sendHtml(res, 400, 'Sign-in refused', `<p>Unsupported step ${escapeHtml(details.prompt.name)}.</p>`);
  }
}
