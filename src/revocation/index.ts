// The revocation part's public entry.
export {
  RevocationSet,
  recordRevocation,
  type RevocationCheckInput,
  type RevocationSetOptions,
  type RevokeInput,
} from './revocation-set.js';
export {
  jtiRevocationExpiry,
  type JtiExpiry,
  type JtiExpiryBasis,
  type JtiExpiryInput,
} from './jti-expiry.js';
