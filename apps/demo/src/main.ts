import { createApp } from "./app";

const port = Number(process.env["PORT"] ?? 3000);
const server = createApp().listen(port, () => {
  console.log(`Sluice demo on http://localhost:${port}  (Ctrl+C to stop)`);
});

function shutdown(signal: string): void {
  console.log(`${signal}: closing`);
  server.close(() => process.exit(0));
  // Open event streams would keep close() waiting; end them.
  server.closeAllConnections();
}
process.once("SIGINT", () => shutdown("SIGINT"));
process.once("SIGTERM", () => shutdown("SIGTERM"));
