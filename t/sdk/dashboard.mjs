// dashboard.mjs PHASE: drive the dashboard (www/) in the system's headless
// Chromium through the DevTools protocol (puppeteer-core) for
// t/t0130-dashboard.sh, one phase per run, and print what the page showed
// as one JSON object on stdout. Every wait is for a condition (a selector,
// an attribute the page sets when a view has loaded), never a fixed sleep.
//
// Environment: GW_URL, KEY (typed into the page), SHOTS (screenshot
// directory), SHOT_PREFIX, DOWNLOADS (for the CSV export), CHROMIUM
// (default /usr/bin/chromium), and per phase: NEW_KEY (master: the name of
// the key to create; disable/manage: the key to act on), LOG_KEY (log: the
// key id to filter on).
import fs from "node:fs";
import path from "node:path";
import puppeteer from "puppeteer-core";

const phase = process.argv[2];
const env = process.env;
const TIMEOUT = 90000;		// per wait: a loaded 2-core machine
const out = { phase, console_errors: [], page_errors: [], failed_requests: [], bad_responses: [] };

const browser = await puppeteer.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  userDataDir: fs.mkdtempSync(path.join(env.DOWNLOADS || "/tmp", "chromium-")),
  protocolTimeout: 180000,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-extensions", "--window-size=1280,1000"],
});

async function shot(page, name) {
  const file = path.join(env.SHOTS, (env.SHOT_PREFIX || "") + name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  (out.screenshots = out.screenshots || []).push(file);
}

// Open the page and type the key in, as a person would; wait until the
// page knows whose key it is and has loaded its first view.
async function login(key) {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.setViewport({ width: 1280, height: 1000 });
  page.on("console", (m) => { if (m.type() === "error") out.console_errors.push(m.text()); });
  page.on("pageerror", (e) => out.page_errors.push(String(e)));
  page.on("requestfailed", (r) => {
    // A download's blob: URL "fails" in headless Chromium by design.
    if (!r.url().startsWith("blob:")) out.failed_requests.push(r.url() + " " + (r.failure() || {}).errorText);
  });
  page.on("response", (r) => { if (r.status() >= 400) out.bad_responses.push(r.status() + " " + r.url()); });
  page.on("dialog", (d) => d.accept(d.type() === "prompt" ? "0" : undefined));
  await page.goto(env.GW_URL + "/", { waitUntil: "networkidle0", timeout: TIMEOUT });
  await page.waitForSelector("body[data-state=ready]");
  await page.type("#key", key);
  await page.click("#save");
  await waitFor(page, () => document.body.dataset.state === "ready" &&
    document.body.dataset.role !== "none" && document.querySelector(".tab:not([hidden])[data-state=ready]"));
  out.role = await page.$eval("body", (b) => b.dataset.role);
  out.chart_library = await page.evaluate(() => typeof window.Chart === "function" ? window.Chart.version : null);
  return page;
}

// Poll every 100 ms: requestAnimationFrame polling stalls in a headless
// page that is not being painted.
const waitFor = (page, fn, ...args) => page.waitForFunction(fn, { polling: 100, timeout: TIMEOUT }, ...args);

async function openTab(page, name) {
  await page.click(`nav button[data-tab=${name}]`);
  await page.waitForSelector(`#tab-${name}[data-state=ready]`);
}

// What a Chart.js chart holds: its labels and each dataset's label and data.
const chartData = (page, name) => page.evaluate((n) => {
  const c = window.llmgateCharts[n];
  if (!c) return null;
  return { type: c.config.type, labels: c.data.labels,
    datasets: c.data.datasets.map((d) => ({ label: d.label, data: d.data })),
    drawn: c.canvas.width > 0 && c.canvas.height > 0 };
}, name);

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

async function keyRow(page, name) {
  await page.waitForSelector(`#keys tr[data-key-name="${name}"]`);
  return `#keys tr[data-key-name="${name}"]`;
}

async function waitNotice(page) {
  await waitFor(page, () => !document.getElementById("notice").hidden ||
    !document.getElementById("secret-box").hidden);
  return page.evaluate(() => ({
    notice: document.getElementById("notice").hidden ? null : document.getElementById("notice").textContent,
    secret: document.getElementById("secret-box").hidden ? null : document.getElementById("secret").textContent,
  }));
}

try {
  if (phase === "master") {
    const page = await login(env.KEY);
    await page.waitForSelector("#tab-overview[data-state=ready]");
    out.requests = await chartData(page, "requests");
    out.latency = await chartData(page, "latency");
    out.cost = await chartData(page, "cost");
    out.by_model = await chartData(page, "by");
    out.budgets = await page.$$eval("#ov-budgets .bar", (els) => els.map((e) => ({
      label: e.querySelector(".label span").textContent, spent: Number(e.dataset.spent), limit: Number(e.dataset.limit) })));
    out.breakers = await texts(page, "#ov-breakers tbody tr td:first-child");
    await shot(page, "overview");
    await page.select("#ov-dim", "key");
    await waitFor(page, () => window.llmgateCharts.by.data.datasets.some((d) => / \(\d+\)$/.test(d.label)));
    out.by_key = await chartData(page, "by");
    await page.select("#ov-range", "30d");
    await waitFor(page, () => document.getElementById("tab-overview").dataset.state === "ready" &&
      window.llmgateCharts.requests.data.labels.length === 30);
    out.requests_30d = await chartData(page, "requests");

    await openTab(page, "keys");
    await page.type("#kf-name", env.NEW_KEY);
    await page.type("#kf-models", "mock-a");
    await page.type("#kf-rpm", "100");
    await page.type("#kf-conc", "4");
    await page.type("#kf-daily", "1.50");
    await page.type("#kf-monthly", "20");
    await page.click("#kf-submit");
    await waitFor(page, () => !document.getElementById("secret-box").hidden);
    out.secret = await page.$eval("#secret", (e) => e.textContent);
    await keyRow(page, env.NEW_KEY);
    await shot(page, "keys-created");
    await openTab(page, "models");
    out.models = await page.$$eval("#models tbody tr", (rows) => rows.map((r) => r.dataset.model));
    await shot(page, "models");
  } else if (phase === "disable") {
    const page = await login(env.KEY);
    await openTab(page, "keys");
    const row = await keyRow(page, env.NEW_KEY);
    await page.click(row + " button[data-act=disable]");
    await page.waitForSelector(row + " button[data-act=enable]");
    out.status = await page.$eval(row + " td:nth-child(11)", (e) => e.textContent);
    await shot(page, "keys-disabled");
    // Edit a limit: POST /admin/keys/ID (the keys helper's route).
    await page.click(row + " button[data-act=edit]");
    await waitFor(page, () => document.getElementById("kf-id").value !== "");
    await page.$eval("#kf-rpm", (e) => { e.value = ""; });
    await page.type("#kf-rpm", "50");
    await page.click("#kf-submit");
    await waitFor(page, () => document.getElementById("kf-msg").textContent !== "");
    out.edit = await page.$eval("#kf-msg", (e) => e.textContent);
  } else if (phase === "manage") {
    const page = await login(env.KEY);
    await openTab(page, "keys");
    let row = await keyRow(page, env.NEW_KEY);
    await page.click(row + " button[data-act=rotate]");
    out.rotate = await waitNotice(page);
    await shot(page, "keys-rotate");
    await page.evaluate(() => { document.getElementById("notice").hidden = true; document.getElementById("secret-box").hidden = true; });
    row = await keyRow(page, env.NEW_KEY);
    await page.click(row + " button[data-act=delete]");
    out.delete = await waitNotice(page);
  } else if (phase === "log") {
    const page = await login(env.KEY);
    await openTab(page, "log");
    await page.waitForSelector(`#lf-key option[value="${env.LOG_KEY}"]`);
    await page.select("#lf-key", env.LOG_KEY);
    await page.select("#lf-status", "ok");
    await page.click("#lf-apply");
    await waitFor(page, () => document.getElementById("tab-log").dataset.state === "ready" &&
      /rows shown/.test(document.getElementById("lf-msg").textContent) &&
      document.querySelector("#log tbody"));
    const rows = () => page.$$eval("#log tbody tr", (trs) => trs.map((tr) => ({
      id: tr.dataset.requestId, key: tr.children[1].textContent, status: Number(tr.children[5].textContent) })));
    out.ok_rows = await rows();
    await shot(page, "usage-log");
    // The CSV of the rows shown, downloaded as a person would.
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: env.DOWNLOADS });
    await page.click("#lf-csv");
    const csv = path.join(env.DOWNLOADS, "llmgate-usage.csv");
    for (const t0 = Date.now(); !fs.existsSync(csv) && Date.now() - t0 < TIMEOUT;)
      await new Promise((r) => setTimeout(r, 100));	// polling the file, not a delay
    out.csv = fs.existsSync(csv) ? fs.readFileSync(csv, "utf8") : null;
    await page.select("#lf-key", "");
    await page.select("#lf-status", "error");
    await page.click("#lf-apply");
    await waitFor(page, () => document.getElementById("tab-log").dataset.state === "ready" &&
      [...document.querySelectorAll("#log tbody tr")].every((tr) => Number(tr.children[5].textContent) >= 400));
    out.error_rows = await rows();
  } else if (phase === "client") {
    const page = await login(env.KEY);
    await page.waitForSelector("#tab-mine[data-state=ready]");
    out.who = await page.$eval("#mine-who", (e) => e.textContent);
    out.budgets = await page.$$eval("#mine-budgets .bar", (els) => els.map((e) => ({
      label: e.querySelector(".label span").textContent, spent: Number(e.dataset.spent), limit: Number(e.dataset.limit) })));
    out.mine = await chartData(page, "mine");
    out.tx = await page.$$eval("#mine-tx tbody tr", (trs) => trs.map((tr) => tr.children[1].textContent));
    out.tabs = await page.$$eval("nav button:not([hidden])", (bs) => bs.map((b) => b.dataset.tab));
    await shot(page, "client");
    await openTab(page, "play");
    await page.waitForSelector("#model option[value=mock-a]");
    await page.select("#model", "mock-a");
    await page.click("#send");
    await page.waitForSelector("#answer[data-done]");
    out.answer = await page.$eval("#answer", (e) => e.textContent);
    out.answer_meta = await page.$eval("#meta", (e) => e.textContent);
    await shot(page, "playground");
  } else {
    throw new Error("unknown phase " + phase);
  }
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
