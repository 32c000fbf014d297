import { KeyObject, type webcrypto } from "node:crypto";
import { createRemoteJWKSet, type FlattenedJWSInput, type JWSHeaderParameters, jwtVerify } from "jose";
import { AppError } from "../errors.js";
import { type Authenticator, explainJoseError, type Identity, identityFromClaims } from "./identity.js";
import { protectedHeader, verifyJwt } from "./jwt-verify.js";

/** The issuer's keys as node:crypto key objects, converted once each. */
const keyObjects = new WeakMap<object, KeyObject>();
function keyObject(key: webcrypto.CryptoKey | KeyObject | Uint8Array): KeyObject | undefined {
  if (key instanceof KeyObject) return key;
  if (key instanceof Uint8Array) return undefined;
  let found = keyObjects.get(key);
  if (!found) {
    found = KeyObject.from(key);
    keyObjects.set(key, found);
  }
  return found;
}

/**
 * Verifies tokens of any OpenID Connect issuer: the keys come from the `jwks_uri` of the issuer's
 * discovery document (fetched once, then cached and refreshed by jose on unknown key ids).
 */
export function oidcAuthenticator(issuer: string, audience: string): Authenticator {
  let keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const discover = async () => {
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`discovery answered ${res.status}`);
    const doc = (await res.json()) as { jwks_uri?: unknown };
    if (typeof doc.jwks_uri !== "string") throw new Error("discovery document has no jwks_uri");
    return createRemoteJWKSet(new URL(doc.jwks_uri));
  };
  return {
    async verify(token: string): Promise<Identity> {
      keys ??= discover().catch((err) => {
        keys = undefined; // try again on the next call
        throw err;
      });
      let jwks: Awaited<typeof keys>;
      try {
        jwks = await keys;
      } catch {
        throw new AppError("unavailable", "the token issuer could not be reached");
      }
      try {
        // The key jose picks from the issuer's set (by key id and algorithm), checked with node:crypto
        // (jwt-verify.ts); jose checks what that does not handle.
        const header = protectedHeader(token) as JWSHeaderParameters;
        const [, payload = "", signature = ""] = token.split(".");
        const key = keyObject(await jwks(header, { payload, signature } as FlattenedJWSInput));
        const claims = key ? verifyJwt(token, key, { issuer, audience }) : undefined;
        return identityFromClaims(claims ?? (await jwtVerify(token, jwks, { issuer, audience })).payload);
      } catch (err) {
        throw explainJoseError(err);
      }
    },
  };
}
