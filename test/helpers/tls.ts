// Certificates tests make for themselves: a self-signed P-256 certificate for 127.0.0.1, made with the
// system's openssl, so Gatehouse can serve https (and browsers see Secure and __Host- cookies).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Writes `<cn>.key` and `<cn>.crt` into `dir`: a one-day certificate with subject CN=`cn` and
 * subjectAltName IP:127.0.0.1 (clients are told to accept it). Returns the two file paths.
 */
export function selfSignedCert(dir: string, cn: string): { key: string; cert: string } {
  const key = join(dir, `${cn}.key`);
  const cert = join(dir, `${cn}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}
