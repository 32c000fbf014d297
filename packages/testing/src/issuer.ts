import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
export type Issuer = Awaited<ReturnType<typeof startIssuer>>;

/**
 * A minimal OpenID Connect issuer on loopback: discovery document and JWKS, and `sign` for tokens
 * with any claims (issuer and `audience` unless the claims set their own; `key` to forge one).
 * `host`: the address it listens on and names itself by (another than loopback for other hosts).
 */
export async function startIssuer(audience: string, host = "127.0.0.1") {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const server = http.createServer((req, res) => {
    const base = `http://${host}:${(server.address() as AddressInfo).port}`;
    res.setHeader("content-type", "application/json");
    if (req.url === "/.well-known/openid-configuration") {
      res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
    } else if (req.url === "/jwks") res.end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end("{}");
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;
  const sign = async (
    claims: Record<string, unknown>,
    opts: { key?: KeyPair["privateKey"]; exp?: number | null } = {},
  ) => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuedAt();
    if (!("iss" in claims)) jwt.setIssuer(url);
    if (!("aud" in claims)) jwt.setAudience(audience);
    // exp: null signs a token that never expires (which the service must refuse).
    if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 3600);
    return jwt.sign(opts.key ?? privateKey);
  };
  return { url, sign, close: () => new Promise<void>((r) => server.close(() => r())) };
}
