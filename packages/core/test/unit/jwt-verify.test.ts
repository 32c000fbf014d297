import { KeyObject, type webcrypto } from "node:crypto";
import { errors, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { explainJoseError } from "../../src/auth/identity.js";
import { verifyJwt } from "../../src/auth/jwt-verify.js";

const expectations = { issuer: "iss-1", audience: "aud-1", algorithms: ["ES256"] };
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** The outcome jose gives and the one verifyJwt gives, as the client would hear it. */
async function both(token: string, key: webcrypto.CryptoKey, expect = expectations) {
  const outcome = async (f: () => Promise<unknown>) => {
    try {
      return { ok: await f() };
    } catch (err) {
      return { error: explainJoseError(err).message };
    }
  };
  const ours = await outcome(async () => verifyJwt(token, KeyObject.from(key), expect) ?? "jose's to check");
  const jose = await outcome(async () => (await jwtVerify(token, key, expect)).payload);
  return { ours, jose };
}

describe("verifyJwt (node:crypto) against jose's jwtVerify", async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const other = await generateKeyPair("ES256");
  const sign = (claims: Record<string, unknown>, key: webcrypto.CryptoKey = privateKey, alg = "ES256") =>
    new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
  const good = { iss: "iss-1", aud: "aud-1", sub: "alice", exp: now() + 60 };

  it("accepts what jose accepts, with the same claims", async () => {
    for (const claims of [good, { ...good, aud: ["x", "aud-1"] }, { ...good, nbf: now() - 5, iat: now() }]) {
      const { ours, jose } = await both(await sign(claims), publicKey);
      expect(jose).toEqual({ ok: claims });
      expect(ours).toEqual(jose);
    }
  });

  it("refuses what jose refuses, for the same reason", async () => {
    const cases = [
      await sign({ ...good, exp: now() - 1 }),
      await sign({ ...good, exp: now() }),
      await sign({ ...good, iss: "other" }),
      await sign({ ...good, aud: "other" }),
      await sign({ ...good, aud: ["other"] }),
      await sign({ ...good, nbf: now() + 60 }),
      await sign({ ...good, iat: "yesterday" }),
      await sign({ ...good, exp: "tomorrow" }),
      await sign({ sub: "alice", aud: "aud-1", exp: now() + 60 }),
      await sign({ sub: "alice", iss: "iss-1", exp: now() + 60 }),
      await sign(good, other.privateKey),
      `${b64({ alg: "none" })}.${b64(good)}.`,
      `${b64({ alg: "HS256" })}.${b64(good)}.c2ln`,
      `${b64({})}.${b64(good)}.c2ln`,
      `${b64([1])}.${b64(good)}.c2ln`,
      "a.b",
      "not a token",
      "....",
    ];
    const real = await sign(good);
    const [h, p, s] = real.split(".");
    cases.push(`${h}.${b64({ ...good, sub: "mallory" })}.${s}`, `${h}.${p}.${s?.slice(0, -4)}`, `${h}.${p}.!${s}`);
    cases.push(`${h}.${Buffer.from("[1]").toString("base64url")}.${s}`);
    for (const token of cases) {
      const { ours, jose } = await both(token, publicKey);
      expect(jose).toHaveProperty("error");
      expect({ token, ...ours }).toEqual({ token, ...jose });
    }
  });

  it("leaves to jose what it does not handle: a crit header, a key of another curve", async () => {
    const crit = await new SignJWT(good)
      .setProtectedHeader({ alg: "ES256", crit: ["b64"], b64: true })
      .sign(privateKey);
    expect(verifyJwt(crit, KeyObject.from(publicKey), expectations)).toBeUndefined();
    const p384 = await generateKeyPair("ES384");
    const token = await sign(good, p384.privateKey, "ES384");
    expect(verifyJwt(token, KeyObject.from(publicKey), { ...expectations, algorithms: ["ES384"] })).toBeUndefined();
  });

  it("checks RSA and EdDSA signatures as jose does", async () => {
    for (const alg of ["RS256", "PS256", "EdDSA"]) {
      const pair = await generateKeyPair(alg, { extractable: true });
      const token = await new SignJWT(good).setProtectedHeader({ alg }).sign(pair.privateKey);
      const key = KeyObject.from(pair.publicKey);
      expect(verifyJwt(token, key, { ...expectations, algorithms: [alg] })).toEqual(good);
      const [h, , s] = token.split(".");
      expect(() =>
        verifyJwt(`${h}.${b64({ ...good, sub: "x" })}.${s}`, key, { ...expectations, algorithms: [alg] }),
      ).toThrow(errors.JWSSignatureVerificationFailed);
    }
  });
});
