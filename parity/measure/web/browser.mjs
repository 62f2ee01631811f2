// One ONNX model in onnxruntime-web inside headless Chromium (page.mjs), on WebGPU or
// WebAssembly, for parity/judge/browser_session.py. Arguments: MODEL TENSOR_DIR PROVIDER THREADS
// CHROMIUM [GPU [ORT_DIST]]; ORT_DIST is the onnxruntime-web dist folder the page loads (this
// folder's by default). It talks JSON lines over stdin/stdout:
//   out, once:  {"ready": true, "inputs": [...], "outputs": [...], "adapter": {...} | null}
//   in:         {"feeds": [{"name", "dtype", "dims", "file"}], "fetches": [names]}
//   out:        {"outputs": [{"name", "dtype", "dims", "file"}]}
// Tensors travel as raw little-endian files in TENSOR_DIR, which the page reads and writes over
// a local HTTP server. Errors go out as {"error": "..."}; the browser closes when stdin closes.
// GPU "hardware" leaves out the SwiftShader flags, so Chromium picks a real adapter
// (chromium.mjs, shared with the kokoro-js page).
import { createWriteStream } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withPage } from "./chromium.mjs";
import { answerLines, runMain, send } from "./lines.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OWN_ORT_DIST = path.join(HERE, "node_modules", "onnxruntime-web", "dist");
const PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="/page.mjs"></script>';
const SAFE_NAME = /^[A-Za-z0-9_.-]+$/;

function serveRoute(modelPath, tensorDir, ortDist) {
  return (request, url, response) => {
    const [, head, name = ""] = url.pathname.split("/");
    const file =
      head === "" ? null
      : head === "page.mjs" || head === "ort-web.mjs" ? path.join(HERE, head)
      : head === "model" ? modelPath
      : SAFE_NAME.test(name) && head === "ort" ? path.join(ortDist, name)
      : SAFE_NAME.test(name) && head === "tensor" ? path.join(tensorDir, name)
      : undefined;
    if (request.method === "POST" && head === "tensor" && file) {
      request.pipe(createWriteStream(file)).on("finish", () => response.end("ok"));
      return true;
    }
    if (file === null) {
      response.setHeader("Content-Type", "text/html");
      response.end(PAGE);
      return true;
    }
    return file;
  };
}

async function main() {
  const [modelPath, tensorDir, provider, threads, chromium, gpu = "software", ortDist] =
    process.argv.slice(2);
  const dist = path.resolve(ortDist || OWN_ORT_DIST);
  const route = serveRoute(path.resolve(modelPath), path.resolve(tensorDir), dist);
  await withPage({ chromium, gpu, route }, async (page) => {
    const opened = await page.evaluate(
      (name, count) => window.openSession(name, count),
      provider,
      Number(threads),
    );
    send({ ready: true, ...opened });
    await answerLines(({ feeds, fetches }) =>
      page.evaluate((f, n) => window.runSession(f, n), feeds, fetches),
    );
  });
}

runMain(main);
