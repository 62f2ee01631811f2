// One ONNX model in onnxruntime-web inside headless Chromium (page.mjs), on WebGPU or
// WebAssembly, for parity/judge/browser_session.py. Arguments: MODEL TENSOR_DIR PROVIDER THREADS
// CHROMIUM [GPU]. It talks JSON lines over stdin/stdout:
//   out, once:  {"ready": true, "inputs": [...], "outputs": [...], "adapter": {...} | null}
//   in:         {"feeds": [{"name", "dtype", "dims", "file"}], "fetches": [names]}
//   out:        {"outputs": [{"name", "dtype", "dims", "file"}]}
// Tensors travel as raw little-endian files in TENSOR_DIR, which the page reads and writes over
// a local HTTP server. Errors go out as {"error": "..."}; the browser closes when stdin closes.
// GPU "hardware" leaves out the SwiftShader flags, so Chromium picks a real adapter.
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ORT_DIST = path.join(HERE, "node_modules", "onnxruntime-web", "dist");
const TYPES = { ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm" };
const PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="/page.mjs"></script>';
const SAFE_NAME = /^[A-Za-z0-9_.-]+$/;

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const firstLine = (error) => String(error?.message ?? error).split("\n")[0];

function serve(modelPath, tensorDir) {
  const server = http.createServer(async (request, response) => {
    // Cross-origin isolation, so the page may use WebAssembly threads (SharedArrayBuffer).
    response.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    response.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    const url = new URL(request.url, "http://localhost");
    const [, head, name = ""] = url.pathname.split("/");
    const file =
      head === "" ? null
      : head === "page.mjs" ? path.join(HERE, "page.mjs")
      : head === "model" ? modelPath
      : SAFE_NAME.test(name) && head === "ort" ? path.join(ORT_DIST, name)
      : SAFE_NAME.test(name) && head === "tensor" ? path.join(tensorDir, name)
      : undefined;
    if (head === "favicon.ico") {
      response.statusCode = 204;
      response.end();
      return;
    }
    if (request.method === "POST" && head === "tensor" && file) {
      request.pipe(createWriteStream(file)).on("finish", () => response.end("ok"));
      return;
    }
    if (file === null) {
      response.setHeader("Content-Type", "text/html");
      response.end(PAGE);
      return;
    }
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

async function main() {
  const [modelPath, tensorDir, provider, threads, chromium, gpu = "software"] =
    process.argv.slice(2);
  const server = await serve(path.resolve(modelPath), path.resolve(tensorDir));
  const args = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-dev-shm-usage"];
  if (gpu !== "hardware") args.push("--enable-unsafe-swiftshader", "--use-angle=swiftshader");
  // protocolTimeout 0: one run on the software adapter takes minutes, and the page answers
  // page.evaluate only when it ends.
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args,
    protocolTimeout: 0,
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => process.stderr.write(`page: ${firstLine(error)}\n`));
    page.on("console", (message) => {
      if (message.type() === "error") process.stderr.write(`console: ${message.text()}\n`);
    });
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction("window.pageReady === true", { timeout: 60_000 });
    const opened = await page.evaluate(
      (name, count) => window.openSession(name, count),
      provider,
      Number(threads),
    );
    send({ ready: true, ...opened });
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (!line.trim()) continue;
      try {
        const { feeds, fetches } = JSON.parse(line);
        send(await page.evaluate((f, n) => window.runSession(f, n), feeds, fetches));
      } catch (error) {
        send({ error: firstLine(error) });
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((error) => {
  send({ error: firstLine(error) });
  process.exit(1);
});
