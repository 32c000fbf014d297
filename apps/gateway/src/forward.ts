import type { Client, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { ChatService } from "@service-chat/api";

/**
 * ChatService on the gateway: every call goes to the Default Service with the caller's own
 * Authorization header, so the caller's identity (and nothing else) decides what it may do.
 * Errors come back as the Default Service gave them; the caller's deadline travels with the call.
 */
export function forwardChat(chat: Client<typeof ChatService>): ServiceImpl<typeof ChatService> {
  const impl: Record<string, (req: never, ctx: HandlerContext) => Promise<unknown>> = {};
  for (const method of ChatService.methods) {
    const call = chat[method.localName as keyof typeof chat] as (req: unknown, options: object) => Promise<unknown>;
    impl[method.localName] = (req, ctx) =>
      call(req, {
        headers: { authorization: ctx.requestHeader.get("authorization") ?? "" },
        signal: ctx.signal,
        // The caller's deadline goes on: the Default Service stops when the caller stops waiting.
        timeoutMs: ctx.timeoutMs(),
      });
  }
  return impl as unknown as ServiceImpl<typeof ChatService>;
}
