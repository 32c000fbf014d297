import { createRemoteJWKSet, jwtVerify } from "jose";
import { AppError } from "../errors.js";
import { type Authenticator, explainJoseError, type Identity, identityFromClaims } from "./identity.js";

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
        const { payload } = await jwtVerify(token, jwks, { issuer, audience });
        return identityFromClaims(payload);
      } catch (err) {
        throw explainJoseError(err);
      }
    },
  };
}
