# syntax=docker/dockerfile:1
# One image for every role of Service Chat: SERVICES picks them (api,relay,fanout for a Default
# Service, gateway for a gateway; all four by default). docs/deployment.md says how to run it.

# Build: install everything, compile every package and app and the web chat, then drop what
# development needs.
FROM node:20.19-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/api/package.json packages/api/
COPY packages/core/package.json packages/core/
COPY packages/protocol/package.json packages/protocol/
COPY packages/sdk/package.json packages/sdk/
COPY packages/testing/package.json packages/testing/
COPY apps/cli/package.json apps/cli/
COPY apps/default/package.json apps/default/
COPY apps/gateway/package.json apps/gateway/
COPY apps/web/package.json apps/web/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts scripts
COPY packages packages
COPY apps apps
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Run: Node 20 and the build output only, as the unprivileged `node` user.
FROM node:20.19-bookworm-slim
ENV NODE_ENV=production \
    BIND_HOST=0.0.0.0 \
    HTTP_PORT=7000 \
    GRPC_PORT=7010 \
    DB_URI=pglite:///app/data
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/packages/api/package.json packages/api/
COPY --from=build /src/packages/api/dist packages/api/dist
COPY --from=build /src/packages/core/package.json packages/core/
COPY --from=build /src/packages/core/dist packages/core/dist
COPY --from=build /src/packages/protocol/package.json packages/protocol/
COPY --from=build /src/packages/protocol/dist packages/protocol/dist
COPY --from=build /src/apps/gateway/package.json apps/gateway/
COPY --from=build /src/apps/gateway/dist apps/gateway/dist
COPY --from=build /src/apps/default/package.json apps/default/
COPY --from=build /src/apps/default/dist apps/default/dist
COPY --from=build /src/apps/web/dist apps/web/dist
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data
USER node
EXPOSE 7000 7010
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# Exec form: node is PID 1 and gets SIGTERM itself (it drains and stops in order).
CMD ["node", "apps/default/dist/main.js"]
