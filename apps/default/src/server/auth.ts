import { type ContextValues, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { type Authenticator, type Identity, unauthenticated } from "@service-chat/core";

const IDENTITY = createContextKey<Identity | undefined>(undefined, { description: "the verified caller" });
/** The check of the Authorization header the server made before reading the body (rpc-adapter.ts). */
export const CHECKED_AUTHORIZATION = createContextKey<Promise<Identity> | undefined>(undefined, {
  description: "the Authorization header, checked before the body was read",
});

/** The caller an `Authorization: Bearer <JWT>` header names; an AppError `unauthenticated` if none. */
export async function verifyAuthorization(auth: Authenticator, header: string | null | undefined): Promise<Identity> {
  if (!header) throw unauthenticated("missing Authorization header (Bearer token)");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthenticated("the Authorization header must be 'Bearer <token>'");
  return auth.verify(match[1] as string);
}

/**
 * Every RPC needs `Authorization: Bearer <JWT>` (except server reflection); the verified identity
 * travels in the context.
 * The server checks the header before it reads a request's body (rpc-adapter.ts): its answer is
 * taken from there, so a refused token costs one check, not two.
 */
export function authInterceptor(auth: Authenticator): Interceptor {
  return (next) => async (req) => {
    // Server reflection serves the API's public schema only (server/reflection.ts).
    if (isOpen(req.service.typeName)) return next(req);
    const checked = req.contextValues.get(CHECKED_AUTHORIZATION);
    req.contextValues.set(IDENTITY, await (checked ?? verifyAuthorization(auth, req.header.get("authorization"))));
    return next(req);
  };
}

/** The verified caller in an interceptor that runs after `authInterceptor`. */
export const callerOf = (values: ContextValues): Identity | undefined => values.get(IDENTITY);

export function caller(ctx: HandlerContext): Identity {
  const id = ctx.values.get(IDENTITY);
  if (!id) throw unauthenticated("not authenticated");
  return id;
}

/** Services served without a token: server reflection, which describes the public API only. */
export const isOpen = (typeName: string): boolean => typeName.startsWith("grpc.reflection.");
