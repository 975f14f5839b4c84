// Starts the `ferry` binary on a free port with an empty data folder, the SCIM 2.0
// peer (`scim2-server`, installed by the setup script) as the target users move into,
// and an OpenLDAP `slapd` (Debian's package) as the legacy directory that still holds
// passwords an export left out; waits until all answer, and hands the tests their URLs
// and the setup token.
import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
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

  const scimPort = await freePort();
  const scimToken = "e2e-peer-token";
  const peerBinary = process.env.FERRY_SCIM_PEER ?? join(root, "tools/scim-venv/bin/scim2-server");
  // The peer's own RFC 7643 schemas with the WSO2-like user extension the server's tests
  // use (askPassword, forcePasswordReset, is_migrated), as a WSO2 target would have.
  const python = join(peerBinary, "..", "python");
  const pkg = execFileSync(python, ["-c", "import scim2_server, os; print(os.path.dirname(scim2_server.__file__))"]).toString().trim();
  const schemas = JSON.parse(readFileSync(join(pkg, "resources/default-schemas.json"), "utf8"));
  schemas.push(JSON.parse(readFileSync(join(root, "server/tests/fixtures/scim/wso2-extension.json"), "utf8")));
  const types = JSON.parse(readFileSync(join(pkg, "resources/default-resource-types.json"), "utf8"));
  for (const t of types) if (t.name === "User") t.schemaExtensions.push({ schema: "urn:scim:wso2:schema", required: false });
  const schemaFile = join(data, "peer-schemas.json");
  const typesFile = join(data, "peer-resource-types.json");
  writeFileSync(schemaFile, JSON.stringify(schemas));
  writeFileSync(typesFile, JSON.stringify(types));
  const peer = spawn(peerBinary, ["--hostname", "127.0.0.1", "--port", String(scimPort), "--bearer-token", scimToken,
    "--schema", schemaFile, "--resource-type", typesFile], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let peerLog = "";
  peer.stderr.on("data", (chunk) => (peerLog += chunk.toString()));
  peer.on("error", (e) => console.error(`the SCIM peer did not start (${peerBinary}): ${e}`));

  // The legacy directory: one person, whose password only the directory knows.
  const ldapDir = join(data, "slapd");
  mkdirSync(join(ldapDir, "db"), { recursive: true });
  const ldapConf = join(ldapDir, "slapd.conf");
  writeFileSync(ldapConf, ["core", "cosine", "inetorgperson", "nis"].map((s) => `include /etc/ldap/schema/${s}.schema`).join("\n") +
    `\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile ${ldapDir}/slapd.pid\ndatabase mdb\nmaxsize 10485760\n` +
    `suffix "dc=example,dc=org"\nrootdn "cn=admin,dc=example,dc=org"\nrootpw admin-secret\ndirectory ${ldapDir}/db\n`);
  const ldif = join(ldapDir, "data.ldif");
  writeFileSync(ldif, "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n" +
    "dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n" +
    "dn: uid=ada,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada Lovelace\nsn: Lovelace\n" +
    "userPassword: Analytical-Engine-1843\n");
  execFileSync("/usr/sbin/slapadd", ["-f", ldapConf, "-l", ldif]);
  const ldapPort = await freePort();
  const slapd = spawn("/usr/sbin/slapd", ["-f", ldapConf, "-h", `ldap://127.0.0.1:${ldapPort}/`, "-d", "0"], { stdio: "ignore" });
  slapd.on("error", (e) => console.error(`slapd did not start: ${e}`));
  await waitFor(() => new Promise<boolean>((ok) => {
    const socket = connect(ldapPort, "127.0.0.1", () => { socket.end(); ok(true); });
    socket.on("error", () => ok(false));
  }), "slapd to listen", 30_000);
  process.env.FERRY_LDAP_URL = `ldap://127.0.0.1:${ldapPort}`;

  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, "ferry to answer");
  await waitFor(async () => (await fetch(`http://127.0.0.1:${scimPort}/v2/ServiceProviderConfig`)).ok, `the SCIM peer to answer\n${peerLog}`, 30_000);
  await waitFor(async () => /setup token: [A-Za-z0-9_-]{43}/.test(log), "the setup token in the log", 10_000);
  const token = log.match(/setup token: ([A-Za-z0-9_-]{43})/)![1];

  process.env.FERRY_URL = url;
  process.env.FERRY_SETUP_TOKEN = token;
  process.env.FERRY_LOG_FILE = logFile;
  process.env.FERRY_SCIM_URL = `http://127.0.0.1:${scimPort}/v2`;
  process.env.FERRY_SCIM_TOKEN = scimToken;

  return async () => {
    peer.kill("SIGTERM");
    slapd.kill("SIGTERM");
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
