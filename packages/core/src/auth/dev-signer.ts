import { KeyObject, type webcrypto } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { exportJWK, generateKeyPair, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import { type Authenticator, explainJoseError, type Identity, identityFromClaims } from "./identity.js";
import { verifyJwt } from "./jwt-verify.js";

export const DEV_ISSUER = "service-chat-dev";
export const DEV_AUDIENCE = "service-chat";

export interface DevTokenRequest {
  sub: string;
  contact_id?: string;
  device_id?: string;
  ttl_s?: number;
}

/** A local signer for development: issues and verifies ES256 tokens. Never active with an issuer. */
export interface DevSigner extends Authenticator {
  sign(request: DevTokenRequest): Promise<string>;
}

/**
 * Creates the development signer. With `keyFile`, its key pair is kept in that file so tokens
 * stay valid across restarts; without, a fresh pair lives in memory.
 */
export async function createDevSigner(keyFile?: string): Promise<DevSigner> {
  const { privateKey, publicKey } = await loadOrCreateKeys(keyFile);
  const publicKeyObject = publicKey instanceof KeyObject ? publicKey : KeyObject.from(publicKey as webcrypto.CryptoKey);
  const expect = { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: ["ES256"] };
  return {
    async sign({ sub, contact_id, device_id, ttl_s = 24 * 3600 }) {
      return new SignJWT({
        ...(contact_id ? { contact_id } : {}),
        ...(device_id ? { device_id } : {}),
      })
        .setProtectedHeader({ alg: "ES256" })
        .setSubject(sub)
        .setIssuer(DEV_ISSUER)
        .setAudience(DEV_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttl_s)
        .sign(privateKey);
    },
    async verify(token: string): Promise<Identity> {
      try {
        const payload =
          verifyJwt(token, publicKeyObject, expect) ?? (await jwtVerify(token, publicKey, expect)).payload;
        return identityFromClaims(payload);
      } catch (err) {
        throw explainJoseError(err);
      }
    },
  };
}

/** The key file cannot be read, written or understood: the message names the file and the problem. */
export class DevSignerKeyError extends Error {
  override readonly name = "DevSignerKeyError";
}

async function loadOrCreateKeys(keyFile?: string) {
  if (keyFile) {
    const saved = await readFile(keyFile, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined; // made below, on first use
      throw new DevSignerKeyError(`DEV_SIGNER_KEY_FILE ${keyFile}: cannot be read (${err.code ?? err.message})`);
    });
    if (saved !== undefined) return importSaved(keyFile, saved);
  }
  const pair = await generateKeyPair("ES256", { extractable: true });
  if (keyFile) {
    try {
      await mkdir(dirname(keyFile), { recursive: true });
      await writeFile(keyFile, JSON.stringify(await exportJWK(pair.privateKey)), { mode: 0o600 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new DevSignerKeyError(`DEV_SIGNER_KEY_FILE ${keyFile}: cannot be written (${code})`);
    }
  }
  return pair;
}

/** A key file this signer wrote: an ES256 private key as a JSON Web Key. */
async function importSaved(keyFile: string, saved: string) {
  const notAKey = (why: string) =>
    new DevSignerKeyError(
      `DEV_SIGNER_KEY_FILE ${keyFile}: not a development signer key (an ES256 private key as a JSON Web Key, ` +
        `as the signer writes it on first use; remove the file to make a new one): ${why}`,
    );
  let jwk: JWK;
  try {
    jwk = JSON.parse(saved) as JWK;
  } catch {
    throw notAKey("the file is not JSON");
  }
  if (typeof jwk !== "object" || jwk === null || jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string") {
    throw notAKey("it is not a P-256 private key");
  }
  const { d: _d, ...pub } = jwk;
  try {
    return { privateKey: await importJWK(jwk, "ES256"), publicKey: await importJWK(pub, "ES256") };
  } catch (err) {
    throw notAKey((err as Error).message);
  }
}
