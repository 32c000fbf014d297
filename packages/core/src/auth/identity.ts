import { type JWTPayload, errors as joseErrors } from "jose";
import { AppError, unauthenticated } from "../errors.js";
import { isWellFormed } from "../validate.js";

/** Who is calling, from a verified token. */
export interface Identity {
  /** The token's `sub`. */
  profileId: string;
  contactId: string;
  deviceId: string;
  /** When the token expires (unix ms), if it says. */
  expiresAt?: number;
}

export interface Authenticator {
  /** Verifies a bearer token; throws AppError("unauthenticated") naming what is wrong. */
  verify(token: string): Promise<Identity>;
}

const MAX_CLAIM = 256;
/** Control characters (NUL included): no id or name in a token may carry one. */
const CONTROL = /[\u0000-\u001F\u007F]/;

export function identityFromClaims(claims: JWTPayload): Identity {
  const claim = (name: string): string => {
    const v = claims[name];
    if (v === undefined || v === null) return "";
    if (typeof v !== "string" || v.length > MAX_CLAIM)
      throw unauthenticated(`token claim ${name} is not a short string`);
    if (CONTROL.test(v) || !isWellFormed(v)) {
      throw unauthenticated(`token claim ${name} contains control characters or invalid Unicode`);
    }
    return v;
  };
  const profileId = claim("sub");
  if (!profileId) throw unauthenticated("token has no subject (sub)");
  // A token that never expires cannot be withdrawn: every token must say when it ends.
  if (typeof claims.exp !== "number") throw unauthenticated("token has no expiry (exp)");
  return {
    profileId,
    contactId: claim("contact_id"),
    deviceId: claim("device_id"),
    expiresAt: claims.exp * 1000,
  };
}

/** Turns a jose failure into a message that names the problem without echoing the token. */
export function explainJoseError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof joseErrors.JWTExpired) return unauthenticated("token expired");
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return unauthenticated(`token claim ${err.claim} is not accepted`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthenticated("token signature is invalid");
  if (err instanceof joseErrors.JWKSNoMatchingKey) return unauthenticated("token is signed by an unknown key");
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) {
    return unauthenticated("token is malformed");
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return unauthenticated("token algorithm is not accepted");
  }
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return new AppError("unavailable", "the token issuer's keys could not be fetched");
  }
  return unauthenticated("token could not be verified");
}
