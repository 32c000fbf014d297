import { createLogger, DevSignerKeyError, startServices, stopOnSignals } from "@service-chat/core";
import { createApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const logger = createLogger(config.LOG_LEVEL);
const app = await createApp(config, logger).catch((err: unknown) => {
  if (!(err instanceof DevSignerKeyError)) throw err;
  console.error(err.message);
  process.exit(2);
});
const running = startServices(app.services, logger);
stopOnSignals(running, logger);

// A role that fails (a port already in use, a backend it cannot go on without) stops the others:
// the process then exits non-zero with one line saying why, so that a supervisor restarts it.
const ports = await Promise.race([app.server.ports, running.done.then(() => undefined)]);
if (ports && app.devSigner) {
  const base = `http://${config.BIND_HOST}:${ports.http}`;
  console.error(`
Service Chat is running (HTTP ${base}, gRPC h2c ${config.BIND_HOST}:${ports.grpc}).
Open the web chat:         ${base}/
Get a development token:   npm run token -- alice
Then call the API:         curl -s ${base}/chat.v1.ChatService/SearchRooms \\
                             -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{}'
`);
}
await running.done;
await app.close();
if (running.failure) {
  console.error(`service-chat: ${running.failure.message}`);
  process.exit(1);
}
logger.info("stopped");
