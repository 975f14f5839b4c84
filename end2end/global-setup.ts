// Starts the `ferry` binary on a free port with an empty data folder, waits until it
// answers, and hands the tests its URL and the setup token it printed.
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? ok(address.port) : fail(new Error("no port"))));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export default async function globalSetup() {
  const root = resolve(__dirname, "..");
  const binary = process.env.FERRY_BINARY ?? join(root, "target/release/ferry");
  const siteRoot = process.env.FERRY_SITE_ROOT ?? join(root, "target/site");
  const data = mkdtempSync(join(tmpdir(), "ferry-e2e-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(data, "ferry.log");
  let log = "";
  const logStream = createWriteStream(logFile);
  const child = spawn(binary, [], {
    env: {
      ...process.env,
      FERRY_DATA_DIR: data,
      FERRY_LISTEN: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: siteRoot,
      FERRY_LOG: "info",
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => {
      log += chunk.toString();
      logStream.write(chunk);
    });
  }
  child.on("exit", (code) => {
    if (code !== null && code !== 0) console.error(`ferry exited with ${code}:\n${log}`);
  });

  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, "ferry to answer");
  await waitFor(async () => /setup token: [A-Za-z0-9_-]{43}/.test(log), "the setup token in the log", 10_000);
  const token = log.match(/setup token: ([A-Za-z0-9_-]{43})/)![1];

  process.env.FERRY_URL = url;
  process.env.FERRY_SETUP_TOKEN = token;
  process.env.FERRY_LOG_FILE = logFile;

  return async () => {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    logStream.end();
    if (process.env.FERRY_KEEP_E2E_DATA) {
      console.log(`Ferry's data and log are in ${data}`);
    } else {
      rmSync(data, { recursive: true, force: true });
    }
  };
}
