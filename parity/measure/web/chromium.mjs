// Headless Chromium and a local HTTP server for a page, shared by browser.mjs (one ONNX model in
// onnxruntime-web) and ../kokoro-js/browser.mjs (kokoro-js in a page). puppeteer-core resolves
// from this folder's lockfile; it downloads no browser.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import puppeteer from "puppeteer-core";
import { firstLine } from "./lines.mjs";

const TYPES = {
  ".mjs": "text/javascript",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".html": "text/html",
};

// route(request, url, response) answers the request itself and returns true, returns a file
// path to send, or returns null/undefined for a 404. Every answer is cross-origin isolated,
// so the page may use WebAssembly threads (SharedArrayBuffer).
export function serve(route) {
  const server = http.createServer(async (request, response) => {
    response.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    response.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    const url = new URL(request.url, "http://localhost");
    if (url.pathname === "/favicon.ico") {
      response.statusCode = 204;
      response.end();
      return;
    }
    const file = await route(request, url, response);
    if (file === true) return;
    try {
      if (!file || !(await stat(file)).isFile()) throw new Error("not found");
    } catch {
      response.statusCode = 404;
      response.end();
      return;
    }
    response.setHeader("Content-Type", TYPES[path.extname(file)] ?? "application/octet-stream");
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// A file under root named by a URL path's rest, or null where the rest would leave root.
export function within(root, rest) {
  const file = path.resolve(root, `.${path.posix.normalize(`/${rest}`)}`);
  return file.startsWith(path.resolve(root) + path.sep) ? file : null;
}

// gpu "hardware" leaves out the SwiftShader flags, so Chromium picks a real adapter.
// protocolTimeout 0: one run on the software adapter takes minutes, and the page answers
// page.evaluate only when it ends.
export async function launch(chromium, gpu = "software") {
  const args = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-dev-shm-usage"];
  if (gpu !== "hardware") args.push("--enable-unsafe-swiftshader", "--use-angle=swiftshader");
  return puppeteer.launch({ executablePath: chromium, headless: true, args, protocolTimeout: 0 });
}

// The page at url, its errors on stderr, once it sets window.pageReady. onRequest, where given,
// answers every request the page makes (puppeteer's request interception).
export async function openPage(browser, url, onRequest = null) {
  const page = await browser.newPage();
  page.on("pageerror", (error) => process.stderr.write(`page: ${firstLine(error)}\n`));
  page.on("console", (message) => {
    if (message.type() === "error") process.stderr.write(`console: ${message.text()}\n`);
  });
  if (onRequest) {
    await page.setRequestInterception(true);
    page.on("request", onRequest);
  }
  await page.goto(url);
  await page.waitForFunction("window.pageReady === true", { timeout: 60_000 });
  return page;
}

// route served, Chromium launched and the page open: use(page) runs, then all of it closes,
// whatever use did. intercept(origin), where given, makes the page's request handler.
export async function withPage({ chromium, gpu, route, intercept = null }, use) {
  const server = await serve(route);
  const origin = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launch(chromium, gpu);
  try {
    return await use(await openPage(browser, origin, intercept ? intercept(origin) : null));
  } finally {
    await browser.close();
    server.close();
  }
}
