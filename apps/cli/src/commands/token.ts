import type { Context } from "../context.js";
import { CliError, EXIT, unreachable } from "../errors.js";

/** `chat token <user> [--device <id>]`: a development token from POST /dev/token. */
export async function token(ctx: Context): Promise<void> {
  const sub = ctx.arg(0, "user");
  ctx.maxArgs(1);
  const device = ctx.options.device;
  let res: Response;
  try {
    res = await fetch(`${ctx.url}/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sub, ...(device ? { device_id: device } : {}) }),
      signal: AbortSignal.timeout(20_000),
    });
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    throw unreachable(ctx.url, e.name === "TimeoutError" ? "no answer in time" : e.cause?.code);
  }
  const body = (await res.json().catch(() => ({}))) as { token?: string; error?: string };
  if (res.status === 404 && !body.error) throw unreachable(ctx.url, "it does not serve /dev/token");
  if (res.status === 404) {
    throw new CliError(
      EXIT.refused,
      "not_found: this server does not issue development tokens (OAUTH2_ISSUER is set): get a token from your identity provider",
    );
  }
  if (res.status === 400) throw new CliError(EXIT.refused, `invalid_argument: ${body.error ?? "bad request"}`);
  if (!res.ok || !body.token) {
    throw new CliError(
      EXIT.refused,
      `internal: could not get a token (HTTP ${res.status}${body.error ? `: ${body.error}` : ""})`,
    );
  }
  if (ctx.out.json) ctx.out.object({ token: body.token });
  else ctx.out.line(body.token);
}
