// OAuth error responses (RFC 6749 §5.2, RFC 8693 §2.2.2) through oidc-provider's error type, so the
// library renders them like its own. Descriptions name the field, the value asked and what is allowed.
import { errors } from 'oidc-provider';

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'invalid_target'
  | 'invalid_scope'
  | 'unauthorized_client'
  | 'unsupported_grant_type';

export function oauthError(
  error: OAuthErrorCode,
  description: string,
  status = error === 'invalid_client' ? 401 : 400,
) {
  const e = new errors.CustomOIDCProviderError(error, description);
  e.status = status;
  (e as unknown as { statusCode: number }).statusCode = status;
  return e;
}
