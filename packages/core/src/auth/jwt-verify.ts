import { constants, type KeyObject, verify } from "node:crypto";
import { errors, type JWTPayload } from "jose";

/**
 * A compact JWT checked in one synchronous step with node:crypto: jose's `jwtVerify` goes through
 * WebCrypto, whose per-call overhead (algorithm normalisation, a job queued and awaited) costs
 * about three times the signature check itself — and a burst of reconnecting devices is a burst
 * of signature checks, each token new. The checks are jose's for the options used here (issuer,
 * audience, allowed algorithms; the time claims, no clock tolerance), and failures are jose's
 * error classes, so `explainJoseError` words them the same way. A token this does not handle (an
 * algorithm or key type it does not know, a `crit` or `b64` header) answers `undefined`: the caller
 * then verifies it with jose.
 */
export interface JwtExpectations {
  issuer: string;
  audience: string;
  /** Algorithms accepted; absent: any this verifier knows. */
  algorithms?: readonly string[];
}

interface Algorithm {
  /** The digest, or null for EdDSA. */
  hash: string | null;
  /** Key types (KeyObject.asymmetricKeyType) it can be checked with. */
  keyTypes: readonly string[];
  /** The curve an EC key must be on. */
  curve?: string;
  pss?: boolean;
}

const ALGORITHMS: Record<string, Algorithm> = {
  ES256: { hash: "sha256", keyTypes: ["ec"], curve: "prime256v1" },
  ES384: { hash: "sha384", keyTypes: ["ec"], curve: "secp384r1" },
  ES512: { hash: "sha512", keyTypes: ["ec"], curve: "secp521r1" },
  RS256: { hash: "sha256", keyTypes: ["rsa"] },
  RS384: { hash: "sha384", keyTypes: ["rsa"] },
  RS512: { hash: "sha512", keyTypes: ["rsa"] },
  PS256: { hash: "sha256", keyTypes: ["rsa", "rsa-pss"], pss: true },
  PS384: { hash: "sha384", keyTypes: ["rsa", "rsa-pss"], pss: true },
  PS512: { hash: "sha512", keyTypes: ["rsa", "rsa-pss"], pss: true },
  EdDSA: { hash: null, keyTypes: ["ed25519"] },
  Ed25519: { hash: null, keyTypes: ["ed25519"] },
};

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The decoded protected header of a compact JWS, or a JWSInvalid error. */
export function protectedHeader(token: string): Record<string, unknown> {
  const dot = token.indexOf(".");
  const part = dot < 0 ? "" : token.slice(0, dot);
  return parseObject(part, () => new errors.JWSInvalid("Invalid Token or Protected Header formatting"));
}

function parseObject(part: string, invalid: () => Error): Record<string, unknown> {
  if (!part || !BASE64URL.test(part)) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid();
  return value as Record<string, unknown>;
}

/** Verifies `token` with `key`; answers its claims, or undefined when jose must do it (see above). */
export function verifyJwt(token: string, key: KeyObject, expect: JwtExpectations): JWTPayload | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) throw new errors.JWSInvalid("Invalid Compact JWS");
  const [head = "", body = "", signature = ""] = parts;
  const header = protectedHeader(token);
  if ("crit" in header || "b64" in header) return undefined;
  const alg = header.alg;
  if (typeof alg !== "string" || !alg)
    throw new errors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing or invalid');
  if (expect.algorithms && !expect.algorithms.includes(alg)) {
    throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  }
  const spec = ALGORITHMS[alg];
  if (!spec || !key.asymmetricKeyType || !spec.keyTypes.includes(key.asymmetricKeyType)) return undefined;
  if (spec.curve && key.asymmetricKeyDetails?.namedCurve !== spec.curve) return undefined;
  // jose refuses RSA keys under 2048 bits: leave those to it.
  if (spec.keyTypes[0] === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return undefined;
  if (!BASE64URL.test(body) || !BASE64URL.test(signature)) throw new errors.JWSInvalid("Invalid Compact JWS");
  let valid = false;
  try {
    valid = verify(
      spec.hash,
      Buffer.from(`${head}.${body}`, "latin1"),
      spec.pss
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : spec.curve
          ? { key, dsaEncoding: "ieee-p1363" }
          : key,
      Buffer.from(signature, "base64url"),
    );
  } catch {
    valid = false;
  }
  if (!valid) throw new errors.JWSSignatureVerificationFailed();
  const claims = parseObject(body, () => new errors.JWTInvalid("JWT Claims Set must be a top-level JSON object"));
  checkClaims(claims, expect);
  return claims as JWTPayload;
}

/** jose's claim checks for `issuer` and `audience`, and the time claims with no tolerance. */
function checkClaims(claims: Record<string, unknown>, expect: JwtExpectations): void {
  const failed = (message: string, claim: string, reason: string) =>
    new errors.JWTClaimValidationFailed(message, claims, claim, reason);
  for (const claim of ["iss", "aud"]) {
    if (!Object.hasOwn(claims, claim)) throw failed(`missing required "${claim}" claim`, claim, "missing");
  }
  if (claims.iss !== expect.issuer) throw failed('unexpected "iss" claim value', "iss", "check_failed");
  const aud = claims.aud;
  if (!(aud === expect.audience || (Array.isArray(aud) && aud.includes(expect.audience)))) {
    throw failed('unexpected "aud" claim value', "aud", "check_failed");
  }
  const now = Math.floor(Date.now() / 1000);
  const date = (claim: string): number | undefined => {
    const v = claims[claim];
    if (v === undefined) return undefined;
    if (typeof v !== "number") throw failed(`"${claim}" claim must be a number`, claim, "invalid");
    return v;
  };
  date("iat");
  const nbf = date("nbf");
  if (nbf !== undefined && nbf > now) throw failed('"nbf" claim timestamp check failed', "nbf", "check_failed");
  const exp = date("exp");
  if (exp !== undefined && exp <= now) {
    throw new errors.JWTExpired('"exp" claim timestamp check failed', claims, "exp", "check_failed");
  }
}
