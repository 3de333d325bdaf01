import { shutdown } from "@sluice/express-sse";
import { createApp } from "./app";

const port = Number(process.env["PORT"] ?? 3000);
const server = createApp().listen(port, () => {
  console.log(`Sluice demo on http://localhost:${port}  (Ctrl+C to stop)`);
});

// Open event streams would keep server.close() waiting forever; shutdown() ends them (clients
// reconnect elsewhere and resume) and resolves once the server is closed.
async function stop(signal: string): Promise<void> {
  console.log(`${signal}: closing event streams and the server`);
  await shutdown(server, { timeout: 5000 });
  process.exit(0);
}
process.once("SIGINT", () => void stop("SIGINT"));
process.once("SIGTERM", () => void stop("SIGTERM"));
