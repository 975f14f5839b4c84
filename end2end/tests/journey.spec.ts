// The main journeys of the foundation, in a real browser against a fresh instance:
// claim it with the setup token, sign in, create and list a project, sign out; invite a
// support member who cannot create projects; and proof that the wasm hydrates.
import { expect, test, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";

const url = () => process.env.FERRY_URL!;
const owner = { name: "Olive Owner", email: "olive@example.com", password: "an owner passphrase 42" };
const support = { email: "sam@example.com", password: "a support passphrase 7" };

test.describe.configure({ mode: "serial" });

async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

async function signIn(page: Page, email: string, password: string) {
  await page.goto(`${url()}/login`);
  await hydrated(page);
  await page.getByLabel("E-mail address").fill(email);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Projects", exact: true })).toBeVisible();
}

// Each page of the journey is looked at 1366 and 390 px wide: at neither may it scroll
// sideways. With FERRY_SCREENSHOTS set to a folder, it is photographed there at both.
async function atBothWidths(page: Page, name: string) {
  const dir = process.env.FERRY_SCREENSHOTS;
  const size = page.viewportSize();
  for (const width of [1366, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    // The outermost elements reaching past the edge, to say what to fix.
    const culprits = overflow <= 0 ? [] : await page.evaluate(() =>
      [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((e) => !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 1))
        .filter((e) => {
          // What a scrolling box clips does not widen the page.
          for (let a = e.parentElement; a; a = a.parentElement) {
            if (getComputedStyle(a).overflowX !== "visible") return false;
          }
          return true;
        })
        .slice(0, 5)
        .map((e) => {
          const chain = [];
          for (let a = e.parentElement; a && chain.length < 4; a = a.parentElement) {
            chain.push(`${a.tagName.toLowerCase()}.${[...a.classList].join(".")}[${getComputedStyle(a).overflowX},${getComputedStyle(a).display},${Math.round(a.getBoundingClientRect().width)}]`);
          }
          return `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")} (${Math.round(e.getBoundingClientRect().width)} px) in ${chain.join(" < ")}`;
        }),
    );
    expect(overflow, `${name} at ${width} px scrolls sideways by ${overflow} px: ${culprits.join(", ")}`).toBeLessThanOrEqual(0);
    if (dir) await page.screenshot({ path: `${dir}/${name}-${width}.png`, fullPage: true });
  }
  if (size) await page.setViewportSize(size);
}

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
}

test("a fresh instance is claimed with the setup token, then a project is created, listed, and the owner signs out", async ({ page }) => {
  await page.goto(url());
  await expect(page).toHaveURL(/\/setup$/);
  await hydrated(page);
  await page.getByLabel("Setup token").fill("not-the-token");
  await page.getByLabel("Your name").fill(owner.name);
  await page.getByLabel("E-mail address").fill(owner.email);
  await page.locator("#password").fill(owner.password);
  await page.locator("#confirm_password").fill(owner.password);
  await page.getByRole("button", { name: "Create owner account" }).click();
  await expect(page.locator("#setup_token-error")).toContainText("not the setup token");

  await page.getByLabel("Setup token").fill(process.env.FERRY_SETUP_TOKEN!);
  await page.getByRole("button", { name: "Create owner account" }).click();
  await expect(page.getByRole("heading", { name: "Projects", exact: true })).toBeVisible();
  await expect(page.getByText("No projects yet")).toBeVisible();

  await signOut(page);
  await signIn(page, owner.email, owner.password);

  await page.getByRole("link", { name: "New project" }).click();
  await expect(page.getByRole("heading", { name: "New project" })).toBeVisible();
  await page.getByRole("button", { name: "Create project" }).click();
  // The browser's own check stops an empty name; a blank one reaches the server.
  await page.getByLabel("Name").fill("   ");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.locator("#name-error")).toContainText("enter a project name");
  await page.getByLabel("Name").fill("Acme staff to Asgardeo");
  await page.getByLabel("Source identity provider").selectOption("keycloak");
  await page.getByLabel("Description").fill("All 40,000 staff accounts.");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByRole("heading", { name: "Acme staff to Asgardeo" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Activity" })).toBeVisible();

  await page.getByRole("link", { name: "Projects", exact: true }).first().click();
  const row = page.locator("#projects tbody tr", { hasText: "Acme staff to Asgardeo" });
  await expect(row).toContainText("Keycloak");
  await expect(row).toContainText("Active");

  await page.goto(`${url()}/audit`);
  await expect(page.locator("#audit")).toContainText("created a project");
  await signOut(page);
  await page.goto(url());
  await expect(page).toHaveURL(/\/login$/);
});

test("hydration: the Show button reveals the typed password only once the wasm runs", async ({ page }) => {
  await page.goto(`${url()}/login`);
  await hydrated(page);
  const password = page.locator("#password");
  await password.fill("secret words");
  await expect(password).toHaveAttribute("type", "password");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(password).toHaveAttribute("type", "text");
  await page.getByRole("button", { name: "Hide" }).click();
  await expect(password).toHaveAttribute("type", "password");
});

test("a support member, invited by the owner, cannot create projects", async ({ page, browser }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Members" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Sam Support");
  await page.getByLabel("E-mail address", { exact: true }).fill(support.email);
  await page.getByLabel("Role", { exact: true }).selectOption("support");
  await page.getByRole("button", { name: "Create invite link" }).click();
  const link = (await page.locator("#invite-link code").textContent())!.trim();
  expect(link).toContain("/invite/");
  await expect(page.locator("#members")).toContainText(support.email);

  // The owner assigns Sam to the project.
  await page.getByRole("link", { name: "Projects", exact: true }).first().click();
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  await page.getByLabel("Support member").selectOption({ label: `Sam Support (${support.email})` });
  await page.getByRole("button", { name: "Assign" }).click();
  await expect(page.locator("#support-staff")).toContainText("Sam Support");

  const samContext = await browser.newContext();
  const sam = await samContext.newPage();
  await sam.goto(link);
  await expect(sam.getByRole("heading", { name: "Welcome, Sam Support" })).toBeVisible();
  await hydrated(sam);
  await sam.locator("#password").fill(support.password);
  await sam.locator("#confirm_password").fill(support.password);
  await sam.getByRole("button", { name: "Set password and sign in" }).click();
  await expect(sam.getByRole("heading", { name: "Projects", exact: true })).toBeVisible();
  await expect(sam.locator("#projects")).toContainText("Acme staff to Asgardeo");
  await expect(sam.getByRole("link", { name: "New project" })).toHaveCount(0);
  await expect(sam.getByRole("link", { name: "Members" })).toHaveCount(0);

  const page403 = await sam.goto(`${url()}/projects/new`);
  expect(page403?.status()).toBe(403);
  await expect(sam.getByRole("heading", { name: "Not allowed" })).toBeVisible();

  const direct = await sam.request.post(`${url()}/sfn/projects/create`, {
    form: { name: "Sneaky", source_kind: "csv", description: "" },
    headers: { Origin: url() },
  });
  expect(direct.status()).toBe(403);
  await samContext.close();
});

test("an API token is created in the UI, shown once, works against the API, and stops working when revoked", async ({ page, request }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "API tokens" }).click();
  await page.getByLabel("Name", { exact: true }).fill("nightly report");
  await page.getByLabel("Role", { exact: true }).selectOption("admin");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.locator("#new-token code").textContent())!.trim();
  expect(secret).toMatch(/^ferry_[A-Za-z0-9_-]{43}$/);
  const row = page.locator("#tokens tbody tr", { hasText: "nightly report" });
  await expect(row).toContainText("Administrator");
  await expect(row).not.toContainText(secret);

  const me = await request.get(`${url()}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  expect(me.status()).toBe(200);
  expect((await me.json()).email).toBe(owner.email);
  const projects = await request.get(`${url()}/api/v1/projects`, { headers: { Authorization: `Bearer ${secret}` } });
  expect((await projects.json()).items[0].name).toBe("Acme staff to Asgardeo");

  await page.reload();
  await expect(page.locator("#new-token")).toHaveCount(0);
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toContainText("Revoked");
  const after = await request.get(`${url()}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  expect(after.status()).toBe(401);
});

test("an export is uploaded in the browser, read, and its bad rows shown", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Uploads" }).click();
  await hydrated(page);
  await page.locator("#upload-files").setInputFiles({
    name: "staff.csv",
    mimeType: "text/csv",
    buffer: Buffer.from(
      "id,email,created_at\n" +
        "s1,one@example.com,2020-01-01\n" +
        "s2,two@example.com\n" +
        "s3,three@example.com,not a date\n",
    ),
  });
  await expect(page.locator("#sending")).toContainText("Uploaded");
  const row = page.locator("#uploads tbody tr", { hasText: "staff.csv" });
  await expect(row.locator(".badge")).toHaveText("Read");
  // The user with an unreadable date is kept; only the short row is refused, and no
  // message quotes a value of the file.
  await expect(row.locator("td.records")).toHaveText("2");
  await expect(row).toContainText("CSV · generic");
  await row.getByRole("button", { name: "1 — show" }).click();
  const errors = page.locator("#upload-errors");
  await expect(errors.getByRole("heading")).toHaveText("What could not be read in staff.csv");
  await expect(errors).toContainText("line 3");
  await expect(errors).toContainText("2 fields where the header has 3");
  await expect(errors).not.toContainText("not a date");
  await atBothWidths(page, "uploads");

  // A file that is no export is not readable, and can be removed after a second click.
  await page.locator("#upload-files").setInputFiles({
    name: "photo.jpg",
    mimeType: "image/jpeg",
    buffer: Buffer.from([0, 1, 2, 3, 250, 251, 252]),
  });
  const junk = page.locator("#uploads tbody tr", { hasText: "photo.jpg" });
  await expect(junk.locator(".badge")).toHaveText("Not readable");
  await expect(junk.locator("td.compared")).toHaveText("— (not read)");
  await junk.getByRole("button", { name: "Remove…" }).click();
  await expect(junk.locator(".confirm-remove")).toContainText("No user was read from it");
  await junk.getByRole("button", { name: "Remove", exact: true }).click();
  await expect(page.locator("#uploads tbody tr", { hasText: "photo.jpg" })).toHaveCount(0);
  await expect(page.locator("#uploads tbody tr", { hasText: "staff.csv" })).toHaveCount(1);
});

test("a Firebase export is refused without its hash parameters and read again with them", async ({ page }) => {
  const fixtures = `${__dirname}/../../domain/tests/fixtures/import/`;
  const params = JSON.parse(readFileSync(`${fixtures}passwords.json`, "utf8")).firebase;
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Uploads" }).click();
  await hydrated(page);
  await page.locator("#upload-files").setInputFiles({
    name: "firebase.json",
    mimeType: "application/json",
    buffer: readFileSync(`${fixtures}firebase.json`),
  });
  const row = page.locator("#uploads tbody tr", { hasText: "firebase.json" });
  await expect(row.locator(".badge")).toHaveText("Not readable");
  await expect(row).toContainText("password hash parameters");
  // Not read, so compared with nothing: no users shown as vanished.
  await expect(row.locator("td.compared")).toHaveText("— (not read)");
  await row.getByRole("button", { name: "Read again…" }).click();
  const panel = page.locator("#read-again");
  await expect(panel.getByRole("heading")).toHaveText("Read firebase.json again");
  await panel.locator("#read-source").selectOption("firebase");
  await panel.locator("#firebase-signer-key").fill("not base64 %%");
  await panel.locator("#firebase-salt-separator").fill(params.salt_separator);
  await panel.locator("#firebase-rounds").fill(String(params.rounds));
  await panel.locator("#firebase-mem-cost").fill(String(params.mem_cost));
  await panel.getByRole("button", { name: "Read again" }).click();
  await expect(panel.getByRole("alert")).toContainText("firebase.signer_key: is not base64");
  await panel.locator("#firebase-signer-key").fill(params.signer_key);
  await panel.getByRole("button", { name: "Read again" }).click();
  await expect(panel).toBeHidden();
  await expect(row.locator(".badge")).toHaveText("Read");
  await expect(row.locator("td.records")).toHaveText("2");
  await expect(row).toContainText("JSON · firebase");
});

test("the assessment is computed, drawn as charts, an attribute's class overridden, a value revealed and a check drilled into", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Assessment" }).click();
  await hydrated(page);
  await expect(page.locator("#assessment-status")).toHaveText("No assessment yet.");
  await page.getByLabel("Phone region").fill("us");
  await page.locator("#start-assessment").click();
  await expect(page.locator("#assessment-status")).toHaveText("Ready");
  await atBothWidths(page, "assessment");
  await expect(page.locator("#totals")).toContainText("Users4");

  // The pictures: bars for fill rates and last sign-ins, a 7 × 24 heatmap.
  await expect(page.locator("#fill-chart svg rect.chart-bar").first()).toBeVisible();
  await expect(page.locator("#recency-chart svg rect.chart-bar")).toHaveCount(5);
  await expect(page.locator("#login-heatmap svg rect.heat-cell")).toHaveCount(168);

  // Examples arrive masked; an owner reveals one.
  const email = page.locator('#attributes tr[data-path="email"]');
  await expect(email.locator(".badge")).toHaveText("PII");
  await expect(email.locator(".masked").first()).toContainText("••");
  await email.getByRole("button", { name: "reveal" }).first().click();
  await expect(email.locator(".revealed")).toContainText("@example.com");

  // An administrator's class wins over the automatic one.
  const created = page.locator('#attributes tr[data-path="created_at"]');
  await expect(created.locator(".badge")).toHaveText("Not personal");
  await created.getByLabel("Class of created_at").selectOption("pii");
  await created.getByRole("button", { name: "Set" }).click();
  await expect(created.locator(".badge")).toHaveText("PII");
  await expect(created).toContainText("set by an administrator");

  // The drill-down lists the records a check found.
  await page.locator("#quality tr", { hasText: "No given, family or display name" }).getByRole("link", { name: "Show records" }).click();
  await expect(page.getByRole("heading", { name: "No given, family or display name" })).toBeVisible();
  await expect(page.locator("#findings tbody tr").first()).toContainText("has no given, family or display name");
  await atBothWidths(page, "findings");
});

test("a target pointing at the SCIM peer is saved with its token hidden, tested, and shows what it discovered", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Target" }).click();
  await hydrated(page);
  const card = page.locator("#target-production");
  await expect(card.locator(".card-head .badge")).toHaveText("Not set up");
  await card.getByLabel("Kind of target").selectOption("generic");
  // Refused by the server (no token yet): what was chosen stays chosen.
  await card.getByLabel("SCIM base URL").fill("ftp://is.example.com/scim2");
  await card.getByRole("button", { name: "Save target" }).click();
  await expect(card.locator(".field-error").first()).toBeVisible();
  await expect(card.getByLabel("Kind of target")).toHaveValue("generic");
  await expect(card.getByLabel("SCIM base URL")).toHaveValue("ftp://is.example.com/scim2");
  await card.getByLabel("SCIM base URL").fill(process.env.FERRY_SCIM_URL!);
  await card.getByLabel("Authentication").selectOption("basic");
  await expect(card.getByLabel("User name")).toBeVisible();
  await card.getByLabel("Authentication").selectOption("bearer");
  await expect(card.getByLabel("User name")).toBeHidden();
  await card.getByLabel("Bearer token").fill(process.env.FERRY_SCIM_TOKEN!);
  await card.getByRole("button", { name: "Save target" }).click();
  await expect(card.locator(".card-head .badge")).toHaveText("Not tested");
  await expect(card.locator(".secret-state")).toHaveText("bearer token: set");
  expect(await page.content()).not.toContain(process.env.FERRY_SCIM_TOKEN!);

  await card.getByRole("button", { name: "Test connection" }).click();
  await expect(card.locator(".card-head .badge")).toHaveText("Connection passed");
  await expect(card.locator(".test-steps tbody tr")).toHaveCount(5);
  await expect(card.locator(".test-steps .badge", { hasText: "Passed" })).toHaveCount(5);
  await expect(card.locator("#max-operations")).toHaveText("1,000");
  await expect(card.locator("#max-payload")).toHaveText("1,048,576 bytes");
  await expect(card.locator("details.schema summary", { hasText: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" })).toBeVisible();

  // A wrong token on the test target fails at authentication and says why.
  const test = page.locator("#target-test");
  await test.getByLabel("SCIM base URL").fill(process.env.FERRY_SCIM_URL!);
  await test.getByLabel("Bearer token").fill("wrong-target-token-7");
  await test.getByRole("button", { name: "Save target" }).click();
  await test.getByRole("button", { name: "Test connection" }).click();
  await expect(test.locator(".card-head .badge")).toHaveText("Connection failed");
  await expect(test.locator(".test-steps tbody tr", { hasText: "Authentication" })).toContainText("401");
  await atBothWidths(page, "target");
});

test("user types are counted live as they are edited, and a rule edited changes the preview and the rejected count", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  const stages = page.getByRole("navigation", { name: "Migration stages" });
  await stages.getByRole("link", { name: "Goals" }).click();
  await hydrated(page);
  const counts = page.locator("#user-type-count-table");
  await expect(counts.locator('tr[data-user-type="Everyone"] td.count')).toHaveText("4");
  await expect(page.locator("#count-basis")).toContainText("all 4 records");

  // Disabled users stay behind: a new user type, tried first.
  await page.locator("#add-user-type").click();
  const leavers = page.locator('fieldset[data-user-type="1"]');
  await leavers.locator(".user-type-name").fill("Leavers");
  await leavers.locator(".user-type-name").press("Tab");
  await leavers.getByRole("button", { name: "↑" }).click();
  const first = page.locator('fieldset[data-user-type="0"]');
  await expect(first.locator("legend")).toHaveText("1. Leavers");
  await first.locator(".user-type-include").uncheck();
  await first.locator(".condition-test").selectOption("status");
  await first.locator(".condition-value").fill("sleeping");
  await first.locator(".condition-value").press("Tab");
  await expect(page.locator("#user-type-counts")).toContainText("is not a status");
  // Saved with the problem: kept, and said to be not ready.
  await page.locator("#save-user-types").click();
  await expect(page.locator("#user-types .card-head")).toContainText("Saved with 1 problem to fix");
  await atBothWidths(page, "goals-problem");
  await first.locator(".condition-value").fill("disabled");
  await first.locator(".condition-value").press("Tab");
  await expect(counts.locator('tr[data-user-type="Leavers"] td.count')).toHaveText("1");
  await expect(counts.locator('tr[data-user-type="Everyone"] td.count')).toHaveText("3");
  await expect(page.locator("#moving-count")).toHaveText("3");
  await page.locator("#save-user-types").click();
  await expect(page.locator("#user-types .card-head")).toContainText("by olive@example.com");
  await expect(page.locator("#estimate-users")).toHaveText("3");

  // The suggested mapping is fitted to these records: they have no user name, so it
  // takes the address, says why, and every record passes.
  await stages.getByRole("link", { name: "Mapping" }).click();
  await hydrated(page);
  await expect(page.locator("#suggestion-notes")).toContainText("userName comes from email, the first field");
  await expect(page.locator("#suggestion-notes")).toContainText("username in 4 of 4");
  await expect(page.locator("#preview-summary")).toHaveText("4 records shown, 0 rejected by a rule.");
  const userName = page.locator('tr.rule[data-rule="0"]');
  await expect(userName.locator(".rule-target")).toHaveValue("userName");
  await expect(userName.locator(".rule-source")).toHaveValue("email");

  // A field these records lack rejects every one of them, on the rule and in the
  // preview; an attribute no record has is flagged on the rule.
  await userName.locator(".rule-source").fill("username");
  await userName.locator(".rule-source").press("Tab");
  await expect(page.locator("#preview-summary")).toHaveText("4 records shown, 4 rejected by a rule.");
  await expect(page.locator(".preview-record .field-error").first()).toContainText("has no value");
  // Rejected records open with their results beside (or, narrow, above) the JSON.
  await atBothWidths(page, "mapping-rejected");
  await page.locator("#compute-impact").click();
  await expect(page.locator("#impact-status")).toContainText("Computed");
  await expect(page.locator("#impact-rejected")).toHaveText("3");
  await expect(page.locator('#impact-rules tr[data-rule="0"] td.rejected')).toHaveText("3");
  await userName.locator(".rule-source").fill("attributes.nope");
  await userName.locator(".rule-source").press("Tab");
  await expect(userName.locator(".field-warning")).toContainText("No record has attributes.nope");

  // Back to the e-mail address: every record passes.
  await userName.locator(".rule-source").fill("email");
  await userName.locator(".rule-source").press("Tab");
  await expect(page.locator("#preview-summary")).toHaveText("4 records shown, 0 rejected by a rule.");
  await expect(page.locator("#impact-stale")).toBeVisible();
  await page.locator("#compute-impact").click();
  await expect(page.locator("#impact-rejected")).toHaveText("0");
  await expect(page.locator("#impact-stale")).toHaveCount(0);

  await page.locator("#version-note").fill("userName from e-mail");
  await page.locator("#save-mapping").click();
  await expect(page.locator("#mapping-version")).toHaveText("Version 1");
  await expect(page.locator("#version-list")).toContainText("userName from e-mail");
  await atBothWidths(page, "mapping");
});

test("a test run on a small sample is watched live to its end against the peer, then rolled back", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "Acme staff to Asgardeo" }).click();
  const stages = page.getByRole("navigation", { name: "Migration stages" });
  await stages.getByRole("link", { name: "Runs" }).click();
  await hydrated(page);
  await expect(page.locator("#run-history")).toHaveCount(0);
  // The real run's buttons are closed, and the page says why.
  await expect(page.locator("#start-real-run")).toBeDisabled();
  await expect(page.locator("#why-closed")).toContainText("Run the pre-flight checks first");

  // Three moving users, one a second, against the production target (the peer).
  const form = page.locator("#test-run");
  await form.getByLabel("Records").fill("3");
  await form.getByLabel("Target").selectOption("production");
  await form.getByLabel("Users per second, at most").fill("1");
  await form.getByRole("button", { name: "Start test run" }).click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  await hydrated(page);
  // Marks this document: a reload would lose it.
  await page.evaluate(() => ((window as unknown as { ferryMark: number }).ferryMark = 42));
  const created = page.locator('#run-counts dd[data-count="created"]');
  await expect(page.locator("#settled-line")).toContainText("of 3 records settled");
  await expect(created).toHaveText("3", { timeout: 30_000 });
  await expect(page.locator('.page-head h2 .badge[data-state="succeeded"]')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator(".page-head h2 .badge")).toHaveText("finished");
  await expect(page.locator('#run-counts dd[data-count="pending"]')).toHaveText("0");
  await expect(page.locator("#run-readback")).toContainText("of 3 users read back");
  await atBothWidths(page, "run-finished");
  expect(await page.evaluate(() => (window as unknown as { ferryMark?: number }).ferryMark)).toBe(42);

  // The crosswalk downloads with one line per created user.
  const download = page.waitForEvent("download");
  await page.locator("#crosswalk").click();
  const csv = readFileSync(await (await download).path(), "utf8").trim().split("\n");
  expect(csv[0]).toBe("source_id,scim_id,state");
  expect(csv).toHaveLength(4);

  // Rolled back after typing how many users go.
  await page.locator("#rollback-confirm").fill("2");
  await page.locator("#rollback").click();
  await expect(page.locator("#run-after .field-error")).toContainText("type the number");
  await page.locator("#rollback-confirm").fill("3");
  await page.locator("#rollback").click();
  await expect(page.locator(".page-head h2")).toContainText("Rollback");
  await expect(page.locator('#run-counts dd[data-count="deleted"]')).toHaveText("3", { timeout: 30_000 });

  await stages.getByRole("link", { name: "Runs" }).click();
  await expect(page.locator("#run-history tbody tr")).toHaveCount(2);
  await expect(page.locator("#run-history tbody tr").last()).toContainText("Test run");

  // The project page says where the migration stands and what comes next.
  await stages.getByRole("link", { name: "Project" }).click();
  const journey = page.locator("#journey");
  await expect(journey.locator('li[data-step="uploads"] .badge')).toHaveText("done");
  await expect(journey.locator('li[data-step="uploads"]')).toContainText("users from");
  await expect(journey.locator('li[data-step="target"] .badge')).toHaveText("done");
  await expect(journey.locator('li[data-step="mapping"] .badge')).toHaveText("done");
  await expect(journey.locator('li[data-step="test_run"] .badge')).toHaveText("done");
  await expect(journey.locator('li[data-step="test_run"]')).toContainText("The last test run finished: 3 created");
  await expect(journey.locator('li[data-step="real_run"] .badge')).toHaveText("not started");
  await expect(journey.locator(".journey-next")).toContainText("Next:");
  await atBothWidths(page, "project-overview");

  // The real run: every check passes, it starts now and finishes; the crosswalk holds
  // the users it created.
  await stages.getByRole("link", { name: "Runs" }).click();
  await hydrated(page);
  await page.locator("#run-preflight").click();
  await expect(page.locator("#preflight-checks li").first()).toBeVisible({ timeout: 30_000 });
  await expect(page.locator("#preflight-checks li.check.bad")).toHaveCount(0);
  await expect(page.locator("#why-closed")).toHaveCount(0);
  await page.locator("#start-real-run").click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  await hydrated(page);
  await expect(page.locator(".page-head h2")).toContainText("Real run");
  await expect(page.locator(".page-head h2 .badge")).toHaveText("finished", { timeout: 30_000 });
  await expect(page.locator('#run-counts dd[data-count="created"]')).toHaveText("3");
  const real = page.waitForEvent("download");
  await page.locator("#crosswalk").click();
  const lines = readFileSync(await (await real).path(), "utf8").trim().split("\n");
  expect(lines).toHaveLength(4);
  await atBothWidths(page, "real-run-finished");
  await stages.getByRole("link", { name: "Project" }).click();
  await expect(journey.locator('li[data-step="real_run"] .badge')).toHaveText("done");
  // Its users choose new passwords by invitation: the waves are what is left to set up.
  await expect(journey.locator('li[data-step="passwords"] .badge')).toHaveText("needs attention");
  await expect(journey.locator('li[data-step="passwords"]')).toContainText("plan the invitation waves");
  await expect(journey.locator(".journey-next")).toContainText("Move the passwords");
  await atBothWidths(page, "project-after-real-run");
  // And the projects list, how far each project has got.
  await page.goto(`${url()}/`);
  const row = page.locator("#projects tbody tr", { hasText: "Acme staff to Asgardeo" });
  await expect(row.locator(".journey-progress")).toContainText("of 11");
  await atBothWidths(page, "projects");
});

// A newcomer's whole journey on an export made by Ferry's generator (300 users with the
// flaws real exports have: duplicate, invalid and missing addresses), guided by the
// project page's checklist from the first step to the crosswalk of the real run.
test("a newcomer walks a generated export from a new project to the real run's crosswalk", async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, owner.email, owner.password);
  await page.getByRole("link", { name: "New project" }).click();
  await page.getByLabel("Name").fill("Generated staff");
  await page.getByLabel("Source identity provider").selectOption("csv");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByRole("heading", { name: "Generated staff" })).toBeVisible();
  const journey = page.locator("#journey");
  const next = journey.locator(".journey-next a");
  await expect(journey.locator('li[data-step="uploads"] .badge')).toHaveText("not started");
  await expect(next).toHaveText("Upload an export");

  // Each step is reached from the checklist's Next button.
  await next.click();
  await hydrated(page);
  await page.locator("#upload-files").setInputFiles(`${__dirname}/../fixtures/generated-300.csv`);
  const row = page.locator("#uploads tbody tr", { hasText: "generated-300.csv" });
  await expect(row.locator(".badge")).toHaveText("Read", { timeout: 30_000 });
  await expect(row.locator("td.records")).toHaveText("300");
  await atBothWidths(page, "generated-uploads");

  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(journey.locator('li[data-step="uploads"]')).toContainText("300 users from 1 upload");
  await expect(next).toHaveText("Assess the data");
  await next.click();
  await hydrated(page);
  await page.locator("#start-assessment").click();
  await expect(page.locator("#assessment-status")).toHaveText("Ready", { timeout: 30_000 });
  // The legacy id is counted, not estimated; a flag is not personal data.
  await expect(page.locator('#attributes tr[data-path="id"]')).toContainText("unique");
  await expect(page.locator('#attributes tr[data-path="id"]')).not.toContainText("estimated");
  await expect(page.locator('#attributes tr[data-path="email_verified"] .badge')).toHaveText("Not personal");
  await atBothWidths(page, "generated-assessment");

  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(next).toHaveText("Connect the target");
  await next.click();
  await hydrated(page);
  const card = page.locator("#target-production");
  await card.getByLabel("Kind of target").selectOption("generic");
  await card.getByLabel("SCIM base URL").fill(process.env.FERRY_SCIM_URL!);
  await card.getByLabel("Authentication").selectOption("bearer");
  await card.getByLabel("Bearer token").fill(process.env.FERRY_SCIM_TOKEN!);
  await card.getByRole("button", { name: "Save target" }).click();
  await expect(card.locator(".card-head .badge")).toHaveText("Not tested");
  await card.getByRole("button", { name: "Test connection" }).click();
  await expect(card.locator(".card-head .badge")).toHaveText("Connection passed");

  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(next).toHaveText("Decide who moves");
  await next.click();
  await hydrated(page);
  await expect(page.locator('#user-type-count-table tr[data-user-type="Everyone"] td.count')).toHaveText("300");
  await page.locator("#save-user-types").click();
  await expect(page.locator("#user-types .card-head")).toContainText("by olive@example.com");
  await atBothWidths(page, "generated-goals");

  // The suggestion is fitted to this export, says how, and previews clean.
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(next).toHaveText("Map the attributes");
  await next.click();
  await hydrated(page);
  await expect(page.locator("#suggestion-notes")).toContainText("userName comes from");
  await expect(page.locator("#preview-summary")).toContainText(", 0 rejected by a rule.");
  await page.locator("#compute-impact").click();
  await expect(page.locator("#impact-status")).toContainText("Computed", { timeout: 30_000 });
  await expect(page.locator("#impact-rejected")).toHaveText("0");
  await atBothWidths(page, "generated-mapping");
  await page.locator("#version-note").fill("as suggested");
  await page.locator("#save-mapping").click();
  await expect(page.locator("#mapping-version")).toHaveText("Version 1");
  await expect(page.locator("#suggestion-notes")).toHaveCount(0);

  // A test run of 10 against production, rolled back; then the real run.
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(next).toHaveText("Run a test");
  await next.click();
  await hydrated(page);
  const form = page.locator("#test-run");
  await form.getByLabel("Records").fill("10");
  await form.getByLabel("Target").selectOption("production");
  await form.getByRole("button", { name: "Start test run" }).click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  await hydrated(page);
  await expect(page.locator(".page-head h2 .badge")).toHaveText(/finished/, { timeout: 60_000 });
  const made = await page.locator('#run-counts dd[data-count="created"]').innerText();
  await page.locator("#rollback-confirm").fill(made.replace(/,/g, ""));
  await page.locator("#rollback").click();
  await expect(page.locator(".page-head h2")).toContainText("Rollback");
  await expect(page.locator(".page-head h2 .badge")).toHaveText(/finished/, { timeout: 60_000 });

  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(next).toHaveText("Run the migration");
  await atBothWidths(page, "generated-checklist");
  await next.click();
  await hydrated(page);
  await page.locator("#run-preflight").click();
  await expect(page.locator("#preflight-checks li").first()).toBeVisible({ timeout: 30_000 });
  await expect(page.locator("#preflight-checks li.check.bad")).toHaveCount(0);
  await page.locator("#start-real-run").click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  await hydrated(page);
  await expect(page.locator(".page-head h2 .badge")).toHaveText(/finished/, { timeout: 120_000 });
  const created = Number((await page.locator('#run-counts dd[data-count="created"]').innerText()).replace(/,/g, ""));
  const failed = Number((await page.locator('#run-counts dd[data-count="failed"]').innerText()).replace(/,/g, ""));
  expect(created + failed).toBe(300);
  expect(created).toBeGreaterThan(290);
  const download = page.waitForEvent("download");
  await page.locator("#crosswalk").click();
  const lines = readFileSync(await (await download).path(), "utf8").trim().split("\n");
  expect(lines).toHaveLength(created + 1);
  await atBothWidths(page, "generated-real-run");

  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Project" }).click();
  await expect(journey.locator('li[data-step="real_run"] .badge')).toHaveText("done");
  // Its failures, if any, wait for review: the checklist's last step.
  if (failed > 0) {
    await expect(journey.locator('li[data-step="review"] .badge')).toHaveText("needs attention");
    await expect(journey.locator(".journey-next")).toContainText("Review the failures");
  } else {
    await expect(journey.locator('li[data-step="review"] .badge')).toHaveText("done");
    // What is left is the passwords: this export's users are invited to reset theirs,
    // and no wave plan sends the invitations yet.
    await expect(journey.locator('li[data-step="passwords"] .badge')).toHaveText("needs attention");
    await expect(journey.locator('li[data-step="passwords"]')).toContainText(`0 of ${created} passwords moved`);
    await expect(journey.locator(".journey-next")).toContainText("Move the passwords");
  }
});

// Calls the REST API with a bearer token, as an administrator's script would; a call
// that fails fails the test with the answer.
function apiClient(page: Page, token: string) {
  return async (method: string, path: string, data?: unknown) => {
    const answer = await page.request.fetch(`${url()}/api/v1${path}`, {
      method, data: data === undefined ? undefined : JSON.stringify(data),
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    });
    expect(answer.ok(), `${method} ${path}: ${await answer.text()}`).toBeTruthy();
    return answer.status() === 204 ? null : answer.json();
  };
}

// Uploads an export through the API and waits until it is read.
async function uploadRead(page: Page, token: string, project: string, fileName: string, data: string) {
  const upload = await page.request.post(`${url()}/api/v1/projects/${project}/uploads?file_name=${fileName}`, {
    data, headers: { Authorization: `Bearer ${token}` },
  });
  expect(upload.ok()).toBeTruthy();
  const uploadId = (await upload.json()).id;
  const api = apiClient(page, token);
  await expect.poll(async () => (await api("GET", `/uploads/${uploadId}`)).status, { timeout: 30_000 }).toBe("parsed");
}

type Api = ReturnType<typeof apiClient>;

// Points the project's targets of these roles at the SCIM peer and tests them.
async function peerTargets(api: Api, base: string, roles: string[]) {
  for (const role of roles) {
    await api("PUT", `${base}/targets/${role}`, {
      preset: "generic", base_url: process.env.FERRY_SCIM_URL, auth: { type: "bearer" }, secret: process.env.FERRY_SCIM_TOKEN, on_existing: "skip",
    });
    await api("POST", `${base}/targets/${role}/test`);
  }
}

// Saves the mapping and waits until its impact over every record is computed.
async function mappedWithImpact(api: Api, base: string, rules: unknown[]) {
  await api("PUT", `${base}/mapping`, { rules });
  await api("POST", `${base}/mapping/impact`, { rules });
  await expect.poll(async () => (await api("GET", `${base}/mapping/impact`)).status, { timeout: 60_000 }).toBe("ready");
}

// Calls a server function as the signed-in page does.
async function sfn(page: Page, name: string, form: Record<string, string>) {
  const answer = await page.request.post(`${url()}/sfn/${name}`, { form, headers: { Origin: url() } });
  expect(answer.status(), `${name}: ${await answer.text()}`).toBe(200);
  return answer.json();
}

// Support staff's review: a real run on the peer leaves three users its mapping
// rejected (their addresses are not addresses); the support member, without the grant
// to see personal data, filters the queue, opens one, corrects its address (seeing the
// corrected record mapped before saving), retries it and watches it succeed; skips
// another with a reason; the owner finds both in the audit log.
test("a support member works the review queue: corrects and retries one user, skips another", async ({ page, browser }) => {
  await signIn(page, owner.email, owner.password);
  // Set up through the API as an administrator's script would: project, export, target,
  // mapping, impact, real run.
  const project = await sfn(page, "projects/create", { name: "Review drill", source_kind: "csv", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "review drill", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  let csv = "id,username,email,first_name,last_name\n";
  for (let i = 0; i < 30; i++) {
    csv += `r-${i},r${i},${i % 10 === 9 ? `not an address ${i}` : `r${i}@corp.example`},Given${i},Family${i}\n`;
  }
  await uploadRead(page, token, project.id, "review.csv", csv);
  const base = `/projects/${project.id}`;
  await peerTargets(api, base, ["production"]);
  const rules = [
    { target: "userName", source: "email", transforms: [{ op: "email" }] },
    { target: "name.givenName", source: "given_name" },
    { target: "name.familyName", source: "family_name" },
  ];
  await mappedWithImpact(api, base, rules);
  const real = await api("POST", `${base}/runs/real`, {});
  await expect.poll(async () => (await api("GET", `${base}/runs/${real.run.id}`)).run.state, { timeout: 60_000 }).toBe("failed");
  // Sam, the support member, works on this project too.
  const members = await sfn(page, "members/list", {});
  const sam = members.items.find((m: { email: string }) => m.email === support.email);
  await sfn(page, "projects/assign_support", { id: project.id, account: sam.id });

  // The run's page links to its failures in the queue.
  await page.goto(`${url()}${base}/runs/${real.run.id}`);
  await page.locator("#run-review").click();
  await expect(page.locator("#review-table tbody tr")).toHaveCount(3);

  const samContext = await browser.newContext();
  const s = await samContext.newPage();
  await signIn(s, support.email, support.password);
  await s.getByRole("link", { name: "Review drill" }).click();
  await expect(s.locator("#review-standing")).toContainText("3 waiting for review");
  await s.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Review" }).click();
  await hydrated(s);
  await expect(s.locator("#review-standing")).toContainText("Of 30 users: 27 migrated");
  await s.locator("#filter-class").fill("mapping");
  await s.locator("#filter-apply").click();
  await expect(s).toHaveURL(/error_class=mapping/);
  await expect(s.locator("#review-table tbody tr")).toHaveCount(3);
  await expect(s.locator("#review-group-table")).toContainText("Mapping rejected");
  await expect(s.locator("#review-queue")).toContainText("Values are masked");
  await atBothWidths(s, "review-queue");
  // No value of these users reaches a viewer without the grant.
  expect(await s.content()).not.toContain("Given9");

  await s.locator("#review-table tbody tr", { hasText: "r-9" }).getByRole("link", { name: "r-9" }).click();
  await hydrated(s);
  await expect(s.locator("#record-status")).toHaveText("Open");
  await expect(s.locator("#record-failure")).toContainText("Mapping rejected at rule 1");
  expect(await s.content()).not.toContain("Given9");
  await s.locator("#correct-email").fill("still wrong");
  await expect(s.locator("#correction-error")).toContainText("not an e-mail address");
  await s.locator("#correct-email").fill("r9@corp.example");
  await expect(s.locator("#correction-preview")).toContainText("The mapping accepts the corrected record.");
  await s.locator("#correct-save").click();
  await expect(s.locator("#record-corrected")).toContainText("changed email");
  await atBothWidths(s, "review-record");
  await s.locator("#record-retry").click();
  await expect(s.locator("#retry-ended")).toContainText("succeeded", { timeout: 30_000 });
  await expect(s.locator("#record-status")).toHaveText("Migrated by a later run");
  await expect(s.locator("#record-history")).toContainText("migrated by run");

  // Another is skipped with a reason: it leaves the queue, counted as skipped.
  await s.goto(`${url()}${base}/review/record?id=r-19`);
  await hydrated(s);
  await s.locator("#record-skip-reason").fill("left the company before the migration");
  await s.locator("#record-skip").click();
  await expect(s.locator("#record-status")).toHaveText("Skipped: left the company before the migration");
  await s.goto(`${url()}${base}/review`);
  await expect(s.locator("#review-table tbody tr")).toHaveCount(1);
  await expect(s.locator("#review-standing")).toContainText("28 migrated, 1 waiting for review");
  await expect(s.locator("#review-standing")).toContainText("1 skipped on purpose");
  await samContext.close();

  // The owner sees both in the audit log, by Sam.
  await page.goto(`${url()}/audit`);
  await expect(page.locator("#audit tr", { hasText: "corrected a record" })).toContainText(support.email);
  await expect(page.locator("#audit tr", { hasText: "acted on failed records" })).toContainText(support.email);
  await expect(page.locator("#audit tr", { hasText: "retried failed records" })).toContainText(support.email);

  // The project page says where every user stands.
  await page.goto(`${url()}${base}`);
  await expect(page.locator("#review-standing")).toContainText("Of 30 users: 28 migrated, 1 waiting for review");
  await expect(page.locator('#journey li[data-step="review"] .badge')).toHaveText("needs attention");
  await atBothWidths(page, "review-overview");

  // The owner lets Sam see personal data (audited), and can take it back.
  await page.getByRole("link", { name: "Members" }).click();
  const samRow = page.locator("#members tr", { hasText: support.email });
  await expect(samRow).toContainText("Masked");
  await samRow.getByRole("button", { name: "Let them see it" }).click();
  await expect(samRow).toContainText("Shown");
  await atBothWidths(page, "members");
  await page.goto(`${url()}/audit`);
  await expect(page.locator("#audit")).toContainText("let a member see personal data");

  // An administrator opens the third user's record in the mapping preview.
  await page.goto(`${url()}${base}/review/record?id=r-29`);
  await expect(page.locator("#record-imported")).toContainText("Given29");
  await page.getByRole("link", { name: "Open in the mapping preview" }).click();
  await hydrated(page);
  await expect(page.locator(".pick")).toContainText("the record r-29 from the review");
  await expect(page.locator("#preview")).toContainText("r-29");
});

// Passwords follow the users: an administrator switches the verification service on,
// makes a client secret (shown once), reads the script to paste, rehearses the whole
// loop on a test-run user (Ferry verifies the legacy hash, then sets the password and
// is_migrated in the test target), and, after the real run, watches coverage rise as
// the login script's calls come in.
test("silent password migration is configured, rehearsed on a test-run user, and its coverage rises with logins", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  const project = await sfn(page, "projects/create", { name: "Passwords drill", source_kind: "auth0", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "passwords drill", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  // Hashes made by independent implementations (passlib, OpenSSL): bcrypt and a salted SHA-256.
  const vectors = JSON.parse(readFileSync(`${__dirname}/../../domain/tests/fixtures/passwords/vectors.json`, "utf8")).vectors;
  const bcrypt = vectors.filter((v: { kind: string }) => v.kind === "bcrypt");
  const silent = bcrypt.map((v: { stored: string }, i: number) => ({
    email: `pw${i}@corp.example`, email_verified: true, user_id: `pw-${i}`, password_hash: v.stored,
  }));
  // Two of a forced-reset type: they wait for an invitation wave.
  const invited = [0, 1].map((i) => ({ email: `rs${i}@reset.example`, email_verified: true, user_id: `rs-${i}` }));
  const users = [...silent, ...invited];
  await uploadRead(page, token, project.id, "auth0.json", JSON.stringify(users));
  const base = `/projects/${project.id}`;
  await peerTargets(api, base, ["production", "test"]);
  await api("PUT", `${base}/user-types`, { user_types: [
    { name: "Invited", include: true, password: "forced_reset", conditions: [{ test: "email_domain", value: "reset.example" }] },
    { name: "Staff", include: true, password: "silent_migration" },
  ] });
  const rules = [
    { target: "userName", source: "email", transforms: [{ op: "email" }] },
    { target: "emails[type eq \"work\"].value", source: "email", transforms: [{ op: "email" }] },
  ];
  await mappedWithImpact(api, base, rules);
  const testRun = await api("POST", `${base}/runs/test`, { size: users.length });
  await expect.poll(async () => (await api("GET", `${base}/runs/${testRun.id}`)).run.state, { timeout: 60_000 }).toBe("succeeded");

  // The Passwords stage: off, and what is missing is said.
  await page.goto(`${url()}${base}`);
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Passwords" }).click();
  await hydrated(page);
  await expect(page.locator("#coverage")).toContainText("No real run has created users yet");
  await expect(page.locator("#service .badge")).toHaveText("Off");
  await expect(page.locator("#service-missing")).toContainText("switch the service on");
  const settings = page.locator("#service-settings");
  await settings.getByLabel("Answer the login script").check();
  await settings.getByLabel("Origin of the target's login pages").fill("https://login.example.com/path");
  await settings.getByRole("button", { name: "Save settings" }).click();
  await expect(page.locator("#service")).toContainText("an origin: a scheme and a host");
  await settings.getByLabel("Origin of the target's login pages").fill("https://login.example.com");
  await settings.getByRole("button", { name: "Save settings" }).click();
  await expect(page.locator("#client-id")).toContainText("fci_");
  await page.locator("#new-secret").click();
  const secret = (await page.locator("#issued-secret code").textContent())!.trim();
  expect(secret).toMatch(/^fcs_/);
  await expect(page.locator("#service .badge")).toHaveText("Answering");
  const clientId = (await page.locator("#client-id").textContent())!.trim();

  // The script names this project's URLs and client, never the secret.
  const script = page.locator("#script-text");
  await expect(script).toHaveValue(new RegExp(clientId));
  await expect(script).toHaveValue(new RegExp(`password-migration/${project.id}/start-authentication`));
  expect(await script.inputValue()).not.toContain(secret);
  await page.getByRole("tab", { name: "Asgardeo" }).click();
  await expect(page.locator("#script")).toContainText("In Asgardeo, open the application");
  await atBothWidths(page, "passwords-service");

  // The rehearsal: a wrong password stops at the status; the right one goes all the way.
  const rehearsal = page.locator("#rehearsal-form");
  await rehearsal.getByLabel("Test-run user").selectOption({ label: "pw-0 (Staff)" });
  await rehearsal.getByLabel("Login name").fill("pw0@corp.example");
  await rehearsal.getByLabel("Their legacy password").fill("not the password");
  await rehearsal.getByRole("button", { name: "Rehearse the login" }).click();
  await expect(page.locator("#rehearsal-result")).toContainText("stopped at the step marked failed");
  await rehearsal.getByLabel("Test-run user").selectOption({ label: "pw-0 (Staff)" });
  await rehearsal.getByLabel("Login name").fill("pw0@corp.example");
  await rehearsal.getByLabel("Their legacy password").fill(bcrypt[0].password);
  await rehearsal.getByRole("button", { name: "Rehearse the login" }).click();
  await expect(page.locator("#rehearsal-result")).toContainText("The whole loop worked");
  await expect(page.locator("#rehearsal-steps")).toContainText("is_migrated is true");
  await atBothWidths(page, "passwords-rehearsal");

  // The test run is rolled back; the real run creates the users in production.
  await api("POST", `${base}/runs/${testRun.id}/rollback`, { confirm: users.length });
  await expect.poll(async () => (await api("GET", `${base}/runs`)).items.filter((r: { kind: string; state: string }) => r.kind === "rollback" && r.state === "succeeded").length, { timeout: 60_000 }).toBe(1);
  const real = await api("POST", `${base}/runs/real`, {});
  await expect.poll(async () => (await api("GET", `${base}/runs/${real.run.id}`)).run.state, { timeout: 60_000 }).toBe("succeeded");
  const created = (await api("GET", `${base}/runs/${real.run.id}/records?state=created`)).records;

  // The login script's part, as WSO2 plays it: a token, then start, poll, status.
  const service = `${url()}/password-migration/${project.id}`;
  const granted = await page.request.post(`${service}/token`, {
    form: { grant_type: "client_credentials", client_id: clientId, client_secret: secret },
  });
  expect(granted.ok()).toBeTruthy();
  const access = (await granted.json()).access_token;
  const login = async (i: number, password: string) => {
    const record = created.find((r: { source_id: string }) => r.source_id === `pw-${i}`);
    const started = await (await page.request.post(`${service}/start-authentication`, {
      data: { id: record.scim_id, username: `pw${i}@corp.example`, password }, headers: { Authorization: `Bearer ${access}` },
    })).json();
    expect(started.message).toBe("Received");
    await expect.poll(async () => (await (await page.request.get(`${service}/authentication-status?contextId=${started.contextId}`)).json()).status).toBe("COMPLETE");
    return (await (await page.request.post(`${service}/authentication-status`, {
      data: { contextId: started.contextId, username: `pw${i}@corp.example` }, headers: { Authorization: `Bearer ${access}` },
    })).json()).status;
  };
  await page.reload();
  await expect(page.locator("#coverage")).toContainText(`Of ${users.length} users the real runs created, 0 (0 %) moved`);
  await expect(page.locator("#waves-waiting")).toContainText("2 users wait for an invitation");
  expect(await login(0, "wrong")).toBe("FAIL");
  expect(await login(0, bcrypt[0].password)).toBe("SUCCESS");
  expect(await login(1, bcrypt[1].password)).toBe("SUCCESS");
  await page.reload();
  await expect(page.locator("#coverage")).toContainText(`Of ${users.length} users the real runs created, 2 (33 %) moved their password at a login`);
  await expect(page.locator("#coverage-by-type")).toContainText("Staff");

  // A wave invites the two forced-reset users; its run page shows it settle.
  await page.locator("#start-wave").getByRole("button", { name: "Start a wave now" }).click();
  await expect(page.locator("#wave-started")).toContainText("A wave of 2 users started");
  await atBothWidths(page, "passwords-waves");
  await page.locator("#wave-started").getByRole("link", { name: "Watch it" }).click();
  await expect(page.getByText("Invite wave").first()).toBeVisible();
  await expect(page.locator('.page-head h2 .badge[data-state="succeeded"]')).toBeVisible({ timeout: 60_000 });
  await atBothWidths(page, "passwords-wave-run");
  await page.goto(`${url()}${base}/passwords`);
  await expect(page.locator("#coverage")).toContainText("2 (33 %) were reset by invitation");
  await expect(page.locator("#waves-waiting")).toContainText("0 users wait for an invitation");
  await expect(page.locator("#wave-list")).toContainText("settled");
  await expect(page.locator("#outcomes")).toContainText("wrong password");
  await expect(page.locator("#verifications")).toContainText("password verified");
  await expect(page.locator("#verifications")).toContainText("bcrypt");
  await atBothWidths(page, "passwords-coverage");
});

test("a user whose export carried no hash keeps their password: the legacy directory checks it", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  const project = await sfn(page, "projects/create", { name: "Directory", source_kind: "ldap", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "directory", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  // The directory's export, made without the right to read userPassword.
  const ldif = "version: 1\n\ndn: uid=ada,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada Lovelace\nsn: Lovelace\nmail: ada@example.org\n";
  await uploadRead(page, token, project.id, "people.ldif", ldif);
  const base = `/projects/${project.id}`;
  await peerTargets(api, base, ["production"]);
  await api("PUT", `${base}/user-types`, { user_types: [{ name: "Staff", include: true, password: "silent_migration" }] });
  const rules = [{ target: "userName", source: "username" }, { target: "emails[type eq \"work\"].value", source: "email", transforms: [{ op: "email" }] }];
  await mappedWithImpact(api, base, rules);
  const real = await api("POST", `${base}/runs/real`, {});
  await expect.poll(async () => (await api("GET", `${base}/runs/${real.run.id}`)).run.state, { timeout: 60_000 }).toBe("succeeded");
  const ada = (await api("GET", `${base}/runs/${real.run.id}/records?state=created`)).records[0];
  await api("PUT", `${base}/passwords/service`, { enabled: true, context_ttl_secs: 60, token_ttl_secs: 3600,
    login_origin: "https://login.example.com", max_user_failures: 5, max_caller_failures: 1000, failure_window_secs: 900 });
  const key = (await api("POST", `${base}/passwords/service/key`)).secret;
  const service = `${url()}/password-migration/${project.id}`;
  const login = async (password: string) => {
    const started = await (await page.request.post(`${service}/start-authentication`, {
      data: { id: ada.scim_id, username: "ada", password }, headers: { Authorization: `Bearer ${key}` },
    })).json();
    await expect.poll(async () => (await (await page.request.get(`${service}/authentication-status?contextId=${started.contextId}`)).json()).status).toBe("COMPLETE");
    return (await (await page.request.post(`${service}/authentication-status`, {
      data: { contextId: started.contextId, username: "ada" }, headers: { Authorization: `Bearer ${key}` },
    })).json()).status;
  };

  // No connection: the card says what that means.
  await page.goto(`${url()}${base}/passwords`);
  await hydrated(page);
  const card = page.locator("#legacy");
  await expect(card.locator("#legacy-status")).toContainText("No legacy connection");
  const form = page.locator("#legacy-form");
  await form.getByLabel("Ask the provider by").selectOption("ldap");
  await form.getByLabel("Directory address").fill("https://ldap.example.org");
  await form.getByRole("button", { name: "Save the connection" }).click();
  await expect(card).toContainText("must start with ldaps:// or ldap://");
  await form.getByLabel("Directory address").fill(process.env.FERRY_LDAP_URL!);
  await form.getByRole("button", { name: "Save the connection" }).click();
  await expect(card.locator("#legacy-status")).toContainText("checked by LDAP bind at");
  await expect(card.locator("#legacy-status")).toContainText("not tested");
  await card.getByRole("button", { name: "Test the connection" }).click();
  await expect(card.locator("#legacy-status")).toContainText("test passed");
  await expect(card.locator("#legacy-test-message")).toContainText("refused a made-up user and password");
  // The other methods ask for their own fields; a client secret is never shown back.
  await form.getByLabel("Ask the provider by").selectOption("cognito");
  await expect(form.getByLabel("Region")).toBeVisible();
  await expect(form.getByLabel("Client secret")).toBeVisible();
  await form.getByLabel("Ask the provider by").selectOption("ldap");
  await atBothWidths(page, "passwords-legacy");

  // The login script's part: wrong, then right; the log names the method.
  expect(await login("not the password")).toBe("FAIL");
  expect(await login("Analytical-Engine-1843")).toBe("SUCCESS");
  await page.reload();
  await expect(page.locator("#verifications")).toContainText("LDAP bind");
  await expect(page.locator("#coverage")).toContainText("1 (100 %) moved their password at a login");
  expect(await page.content()).not.toContain("Analytical-Engine-1843");
});

// The plan: an owner drafts it on a project that has walked to a test run — Ferry's
// suggested window taken (the quiet Sunday hours of the last logins), a risk Ferry's
// data shows adopted, a requirement settled, a limit the data does not meet — saves
// it, sees the limit missed, states another, compares the two versions, approves the
// latest; the real run's pre-flight waits for that; the printable plan shows it.
test("a plan is drafted with the suggested window and Ferry's risks, compared, approved, and printed", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  const project = await sfn(page, "projects/create", { name: "Plan drill", source_kind: "csv", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "plan drill", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  // Last logins at every hour of a week but Sunday 01:00–05:00 UTC; one in four a contractor.
  const rows = ["id,username,email,groups,last_login"];
  const monday = Date.UTC(2026, 10, 2);
  for (let slot = 0; slot < 7 * 24; slot++) {
    const at = new Date(monday + slot * 3600_000);
    if (at.getUTCDay() === 0 && at.getUTCHours() >= 1 && at.getUTCHours() < 5) continue;
    const i = rows.length - 1;
    rows.push(`p-${i},plan${i},plan${i}@corp.example,${i % 4 === 3 ? "contractors" : "staff"},${at.toISOString()}`);
  }
  await uploadRead(page, token, project.id, "users.csv", rows.join("\n") + "\n");
  const base = `/projects/${project.id}`;
  await api("POST", `${base}/assessment`);
  await expect.poll(async () => (await api("GET", `${base}/assessment`)).status, { timeout: 60_000 }).toBe("ready");
  await peerTargets(api, base, ["production", "test"]);
  await api("PUT", `${base}/user-types`, { user_types: [
    { name: "Staff", include: true, password: "silent_migration", conditions: [{ test: "in_group", value: "staff" }] },
    { name: "Contractors", include: true, password: "forced_reset", conditions: [{ test: "in_group", value: "contractors" }] },
  ] });
  const rules = [
    { target: "userName", source: "username" },
    { target: "emails[type eq \"work\"].value", source: "email", transforms: [{ op: "email" }] },
  ];
  await mappedWithImpact(api, base, rules);
  const testRun = await api("POST", `${base}/runs/test`, { size: 20 });
  await expect.poll(async () => (await api("GET", `${base}/runs/${testRun.id}`)).run.state, { timeout: 60_000 }).toBe("succeeded");

  await page.goto(`${url()}${base}`);
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Plan" }).click();
  await hydrated(page);
  await expect(page.locator("#plan-state")).toContainText("Not saved yet");
  const milestones = page.locator("#ferry-milestones");
  await expect(milestones.locator('li[data-milestone="test_run"]')).toContainText("done");
  await expect(milestones.locator('li[data-milestone="plan_approved"]')).toContainText("waiting");
  const suggestion = page.locator("#suggested-window");
  await expect(suggestion).toContainText("Suggested: Sun");
  await expect(suggestion).toContainText("01:00");
  await suggestion.getByRole("button", { name: "Use this window" }).click();
  await expect(page.locator("fieldset.window .period-label")).toHaveValue("Suggested by Ferry");
  const proposal = page.locator('li[data-proposal="silent_without_hash"]');
  await expect(proposal).toContainText("no usable hash");
  await proposal.getByRole("button", { name: "Add to the plan" }).click();
  await expect(proposal).toContainText("In the plan");
  await expect(page.locator('fieldset.risk[data-proposal="silent_without_hash"] .risk-title')).toHaveValue(/no hash/);
  const legal = page.locator('fieldset.requirement[data-key="legal_basis"]');
  await legal.locator(".requirement-status").selectOption("met");
  await legal.locator(".requirement-owner").fill("Legal team");
  await legal.locator(".requirement-owner").blur();
  await page.locator("#max-reset-percent").fill("10");
  await page.locator("#max-reset-percent").blur();
  await page.locator("#plan-note").fill("first draft");
  await page.getByRole("button", { name: "Save a version" }).click();
  await expect(page.locator("#plan-state")).toContainText("Version 1 saved");
  await expect(page.locator("#plan-state")).toContainText("not approved");
  await expect(page.locator('#impact-tests tr[data-test="reset_percent"]')).toContainText("over");
  const planCheck = async () => (await api("GET", `${base}/runs/preflight`)).checks.find((c: { name: string }) => c.name === "plan");
  expect((await planCheck()).detail).toContain("not approved");
  await atBothWidths(page, "plan");

  // A limit the data meets, a second version, the two compared, then approved.
  await page.locator("#max-reset-percent").fill("30");
  await page.locator("#max-reset-percent").blur();
  await page.getByRole("button", { name: "Save a version" }).click();
  await expect(page.locator("#plan-state")).toContainText("Version 2 saved");
  await expect(page.locator('#impact-tests tr[data-test="reset_percent"]')).toContainText("met");
  await page.locator("#compare-from").fill("1");
  await page.locator("#compare-to").fill("2");
  await page.locator("#compare-to").blur();
  await page.getByRole("button", { name: "Compare" }).click();
  await expect(page.locator("#plan-changes")).toContainText("acceptable.max_reset_percent");
  await page.getByRole("button", { name: "Approve version 2" }).click();
  await expect(page.locator("#plan-state")).toContainText("approved");
  await expect(milestones.locator('li[data-milestone="plan_approved"]')).toContainText("done");
  expect((await planCheck()).passed).toBe(true);

  await page.getByRole("link", { name: "Printable plan" }).click();
  await expect(page.locator("#plan-version")).toContainText("Version 2");
  await expect(page.locator("#plan-version")).toContainText("approved");
  await expect(page.locator("#document-risks")).toContainText("no hash");
  await expect(page.locator("#plan-document")).toContainText("Suggested by Ferry");
  await expect(page.locator("#plan-document")).toContainText("Legal team");
  await atBothWidths(page, "plan-print");
});

// Reconciliation: after a real run on the peer, someone changes one user directly in
// the target and deletes another; a reconciliation started on the Runs page reads every
// user back, finds exactly those two, and both wait in the review queue by class.
test("a reconciliation finds a user changed in the target and one deleted there, both in the review queue", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  const project = await sfn(page, "projects/create", { name: "Reconcile drill", source_kind: "csv", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "reconcile drill", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  let csv = "id,username,email,first_name,last_name\n";
  for (let i = 0; i < 12; i++) csv += `c-${i},c${i},c${i}@recon.example,Given${i},Family${i}\n`;
  await uploadRead(page, token, project.id, "reconcile.csv", csv);
  const base = `/projects/${project.id}`;
  await peerTargets(api, base, ["production"]);
  const rules = [
    { target: "userName", source: "email", transforms: [{ op: "email" }] },
    { target: "name.givenName", source: "given_name" },
    { target: "name.familyName", source: "family_name" },
  ];
  await mappedWithImpact(api, base, rules);
  const real = await api("POST", `${base}/runs/real`, {});
  await expect.poll(async () => (await api("GET", `${base}/runs/${real.run.id}`)).run.state, { timeout: 60_000 }).toBe("succeeded");
  const created = (await api("GET", `${base}/runs/${real.run.id}/records?state=created&limit=100`)).records;
  const id = (source: string) => created.find((r: { source_id: string }) => r.source_id === source).scim_id;
  const peer = async (method: string, path: string, data?: unknown) => {
    const answer = await page.request.fetch(`${process.env.FERRY_SCIM_URL}${path}`, {
      method, data: data === undefined ? undefined : JSON.stringify(data),
      headers: { Authorization: `Bearer ${process.env.FERRY_SCIM_TOKEN}`, "Content-Type": "application/scim+json" },
    });
    expect(answer.ok(), `${method} ${path}: ${await answer.text()}`).toBeTruthy();
  };
  await peer("PATCH", `/Users/${id("c-2")}`, {
    schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    Operations: [{ op: "replace", path: "name.familyName", value: "Changed-Elsewhere" }],
  });
  await peer("DELETE", `/Users/${id("c-7")}`);

  await page.goto(`${url()}${base}/runs`);
  await hydrated(page);
  const card = page.locator("#reconcile");
  await expect(card).toContainText("Reconcile with the target");
  await atBothWidths(page, "runs-reconcile");
  await card.getByRole("button", { name: "Reconcile" }).click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  await expect(page.getByRole("heading", { name: /Reconciliation/ })).toBeVisible();
  await expect(page.locator('#run-counts dd[data-count="failed"]')).toHaveText("2", { timeout: 30_000 });
  // Settled is not finished: the run then lists the target and queues what it found.
  await expect(page.getByRole("heading", { name: /Reconciliation/ })).toContainText("finished with failures", { timeout: 30_000 });
  await expect(page.locator('#run-counts dd[data-count="skipped"]')).toHaveText("10");
  await expect(page.locator("#reconcile-legend")).toContainText("review queue");
  await expect(page.locator("body")).toContainText("Differs in the target (reconciliation)");
  await expect(page.locator("body")).toContainText("Gone from the target (reconciliation)");
  await atBothWidths(page, "reconcile-run");
  expect(await page.content()).not.toContain("Changed-Elsewhere");

  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Review" }).click();
  await hydrated(page);
  const queue = page.locator("#review-table");
  await expect(queue.locator("tbody tr", { hasText: "c-2" })).toContainText("Differs in the target");
  await expect(queue.locator("tbody tr", { hasText: "c-7" })).toContainText("Gone from the target");
  await atBothWidths(page, "reconcile-review");

  // The final report: every user's standing, the reconciliation, the runs with their crosswalk.
  await page.getByRole("navigation", { name: "Migration stages" }).getByRole("link", { name: "Report" }).click();
  await hydrated(page);
  await expect(page.locator("#report-standing")).toContainText("Of 12 users: 10 in the target, 2 waiting in review");
  await expect(page.locator("#report-reconciliation")).toContainText("12 of 12 users read back");
  await expect(page.locator("#report-reconciliation")).toContainText("10 as sent, 2 found different or gone");
  await expect(page.locator("#report-runs")).toContainText("Reconciliation");
  await expect(page.locator("#report-runs").getByRole("link", { name: "CSV" })).toHaveCount(1);
  await atBothWidths(page, "final-report");
});

// The cutover: after the real run a newer export arrives with one user changed, one
// new and one gone; the delta run creates, updates only what changed, deactivates the
// gone one, counts each decision, and its rollback undoes them all.
test("a cutover delta applies a newer export and its rollback undoes it", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  const project = await sfn(page, "projects/create", { name: "Cutover drill", source_kind: "csv", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "cutover drill", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  const row = (i: number, given = `Given${i}`) => `dl-${i},dl${i},dl${i}@delta.example,${given},Family${i}\n`;
  const header = "id,username,email,first_name,last_name\n";
  let first = header;
  for (let i = 0; i < 6; i++) first += row(i);
  await uploadRead(page, token, project.id, "before.csv", first);
  const base = `/projects/${project.id}`;
  await peerTargets(api, base, ["production"]);
  const rules = [
    { target: "userName", source: "email", transforms: [{ op: "email" }] },
    { target: "name.givenName", source: "given_name" },
    { target: "name.familyName", source: "family_name" },
  ];
  await mappedWithImpact(api, base, rules);
  const real = await api("POST", `${base}/runs/real`, {});
  await expect.poll(async () => (await api("GET", `${base}/runs/${real.run.id}`)).run.state, { timeout: 60_000 }).toBe("succeeded");
  // The newer export: dl-1 renamed, dl-5 gone, dl-6 new.
  let newer = header;
  for (let i = 0; i < 5; i++) newer += i === 1 ? row(1, "Renamed1") : row(i);
  newer += row(6);
  await uploadRead(page, token, project.id, "cutover.csv", newer);

  await page.goto(`${url()}${base}/runs`);
  await hydrated(page);
  const card = page.locator("#delta");
  await expect(card.locator("#delta-upload")).toContainText("cutover.csv");
  await expect(card.locator("#delta-counts")).toContainText("1 new, 1 changed, 1 gone from it");
  await card.locator("#delta-missing").selectOption("deactivate");
  await atBothWidths(page, "runs-delta");
  await card.getByRole("button", { name: "Start the delta" }).click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]+$/);
  await expect(page.getByRole("heading", { name: /Cutover delta/ })).toContainText("finished", { timeout: 30_000 });
  await expect(page.locator('#run-counts dd[data-count="created"]')).toHaveText("1");
  await expect(page.locator('#run-counts dd[data-count="updated"]')).toHaveText("2");
  await expect(page.locator("#delta-legend")).toContainText("only the attributes that differ");
  const classes = page.locator("#run-classes");
  await expect(classes.locator('tr[data-class="delta_changed"]')).toContainText("changed: name");
  await expect(classes.locator('tr[data-class="missing_deactivated"]')).toContainText("1");
  await atBothWidths(page, "delta-run");
  expect(await page.content()).not.toContain("Renamed1");

  // Undone: the confirmation is the number of users put back.
  const after = page.locator("#run-after");
  await expect(after).toContainText("Deletes the 1 user this delta created, puts back the former values of the 2 users it changed or deactivated");
  await after.locator("#rollback-confirm").fill("3");
  await after.getByRole("button", { name: "Undo the delta" }).click();
  await expect(page.getByRole("heading", { name: /Rollback/ })).toContainText("finished", { timeout: 30_000 });
  await expect(page.locator('#run-counts dd[data-count="failed"]')).toHaveText("0");
});

// Retention and purge: an owner sets how long the data is kept, then purges it on the
// Report page by typing the project's name; the project says it is read only, and no
// record of it can be read any more.
test("a purge leaves no record readable and the project read only", async ({ page }) => {
  await signIn(page, owner.email, owner.password);
  const project = await sfn(page, "projects/create", { name: "Purge drill", source_kind: "csv", description: "" });
  const token = (await sfn(page, "tokens/create", { name: "purge drill", role: "owner" })).secret as string;
  const api = apiClient(page, token);
  let csv = "id,username,email,first_name,last_name\n";
  for (let i = 0; i < 8; i++) csv += `p-${i},p${i},p${i}@purge.example,Given${i},Family${i}\n`;
  await uploadRead(page, token, project.id, "purge.csv", csv);
  const base = `/projects/${project.id}`;
  const before = await page.request.get(`${url()}/api/v1${base}/review/records/p-3`, { headers: { Authorization: `Bearer ${token}` } });
  expect(before.status()).toBe(200);
  expect(await before.text()).toContain("p3@purge.example");

  // One export purged alone first: its file and the two users only it brought.
  await uploadRead(page, token, project.id, "extra.csv", "id,username,email,first_name,last_name\np-8,p8,p8@purge.example,G8,F8\np-9,p9,p9@purge.example,G9,F9\n");
  await page.goto(`${url()}${base}/uploads`);
  await hydrated(page);
  const extra = page.locator("#uploads tbody tr", { hasText: "extra.csv" });
  await extra.locator(".purge-upload").click();
  await expect(extra).toContainText("Destroy this export's file");
  await extra.locator(".confirm-purge-button").click();
  await expect(page.locator("#uploads tbody tr", { hasText: "extra.csv" })).toContainText("Purged", { timeout: 15_000 });
  await atBothWidths(page, "upload-purged");

  await page.goto(`${url()}${base}/report`);
  await hydrated(page);
  const card = page.locator("#retention");
  await expect(card).toContainText("No retention period");
  await expect(card).toContainText("holds 8 records from 1 upload");
  await card.locator("#retention-days").fill("30");
  await card.locator("#retention-save").click();
  await expect(card.locator("#retention-schedule")).toContainText("Kept 30 days after the real run finishes; no real run has finished yet");
  await card.locator("#purge-zone summary").click();
  await atBothWidths(page, "retention");
  await card.locator("#purge-confirm").fill("Purge drll");
  await card.locator("#purge").click();
  await expect(card.locator("#confirm-error")).toContainText("type the project's name exactly");
  await card.locator("#purge-confirm").fill("Purge drill");
  await card.locator("#purge").click();
  await expect(page.locator("#purged-notice")).toContainText("imported data was purged", { timeout: 15_000 });
  await expect(card.locator("#retention-purged")).toContainText("The crosswalk and the final report below were kept.");
  await expect(page.locator("#report-kept")).toContainText("as it stood when the imported data was purged");
  await atBothWidths(page, "purged");

  // Nothing of the project's records reads any more, and nothing can be changed.
  const after = await page.request.get(`${url()}/api/v1${base}/review/records/p-3`, { headers: { Authorization: `Bearer ${token}` } });
  expect(after.status()).not.toBe(200);
  expect(await after.text()).not.toContain("p3@purge.example");
  expect((await api("GET", `${base}/retention`)).holding.records).toBe(0);
  const upload = await page.request.post(`${url()}/api/v1${base}/uploads?file_name=late.csv`, { data: csv, headers: { Authorization: `Bearer ${token}` } });
  expect(upload.status()).toBe(409);
  expect(await upload.text()).toContain("read only");
});

test("on a 390 px phone the menu button opens the navigation and nothing overflows", async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await signIn(page, owner.email, owner.password);
  const nav = page.locator("#main-nav");
  await expect(nav).toBeHidden();
  await page.getByRole("button", { name: "Menu" }).click();
  await expect(nav).toBeVisible();
  await expect(nav.getByRole("link", { name: "Audit log" })).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await context.close();
});

test("the server log holds no passwords, no target tokens and no e-mail addresses", async () => {
  const log = readFileSync(process.env.FERRY_LOG_FILE!, "utf8");
  expect(log).toContain("listening");
  for (const secret of [owner.password, support.password, owner.email, support.email, process.env.FERRY_SCIM_TOKEN!, "wrong-target-token-7"]) {
    expect(log).not.toContain(secret);
  }
});
