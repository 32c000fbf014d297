/**
 * Prints a development token from the running service: `npm run token -- alice [device_id]`.
 * Uses HTTP_PORT (default 7000) on 127.0.0.1.
 */
const [sub, device_id] = process.argv.slice(2);
if (!sub) {
  console.error("usage: npm run token -- <user> [device_id]");
  process.exit(2);
}
const base = `http://127.0.0.1:${process.env.HTTP_PORT || 7000}`;
try {
  const res = await fetch(`${base}/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sub, ...(device_id ? { device_id } : {}) }),
  });
  const body = (await res.json()) as { token?: string; error?: string };
  if (!res.ok || !body.token) {
    console.error(
      res.status === 404
        ? "the service does not issue development tokens (OAUTH2_ISSUER is set): get a token from your issuer"
        : `could not get a token: ${body.error ?? res.status}`,
    );
    process.exit(1);
  }
  console.log(body.token);
} catch {
  console.error(`no service answers at ${base}: start it with 'npm start' first`);
  process.exit(1);
}
