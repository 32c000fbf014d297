import { type ContextValues, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { type Authenticator, type Identity, unauthenticated } from "@service-chat/core";

const IDENTITY = createContextKey<Identity | undefined>(undefined, { description: "the verified caller" });

/**
 * Every RPC needs `Authorization: Bearer <JWT>` (except server reflection); the verified identity
 * travels in the context.
 */
export function authInterceptor(auth: Authenticator): Interceptor {
  return (next) => async (req) => {
    // Server reflection serves the API's public schema only (server/reflection.ts).
    if (req.service.typeName.startsWith("grpc.reflection.")) return next(req);
    const header = req.header.get("authorization");
    if (!header) throw unauthenticated("missing Authorization header (Bearer token)");
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw unauthenticated("the Authorization header must be 'Bearer <token>'");
    req.contextValues.set(IDENTITY, await auth.verify(match[1] as string));
    return next(req);
  };
}

export function caller(ctx: HandlerContext): Identity {
  const id = ctx.values.get(IDENTITY);
  if (!id) throw unauthenticated("not authenticated");
  return id;
}

/** The verified caller of a call, if the auth interceptor has seen one (for the access log). */
export const callerOf = (values: ContextValues): Identity | undefined => values.get(IDENTITY);
