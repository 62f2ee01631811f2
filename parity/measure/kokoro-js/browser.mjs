// kokoro-js 1.2.1 in headless Chromium (page.mjs), device "webgpu" (or "wasm"), as a page that
// bundles it runs it; parity/measure/kokoro_js.py runs it once per model:
//   node browser.mjs ROOT MODEL DTYPE DEVICE THREADS REQUESTS.json OUT_DIR CHROMIUM [GPU]
// with the arguments and answer of speak.mjs (the same client under Node.js). Nothing leaves
// the machine: the page's only outside requests are kokoro-js's voice downloads from the
// Hugging Face hub, answered here from its package's voices/*.bin; any other one is refused.
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withPage, within } from "../web/chromium.mjs";
import { runMain, send } from "../web/lines.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODULES = path.join(HERE, "node_modules");
// What a bundler resolves kokoro-js's imports to in a browser build: transformers.js's web
// build, onnxruntime-web's default (WebAssembly + WebGPU) bundle, and nothing for the Node
// modules kokoro-js's package.json maps to false for browsers.
const IMPORTS = {
  "kokoro-js": "/js/kokoro-js/dist/kokoro.js",
  "@huggingface/transformers": "/js/@huggingface/transformers/dist/transformers.web.js",
  "onnxruntime-web": "/js/onnxruntime-web/dist/ort.bundle.min.mjs",
  "onnxruntime-common": "/js/onnxruntime-common/dist/esm/index.js",
  phonemizer: "/js/phonemizer/dist/phonemizer.js",
  path: "/empty.mjs",
  "fs/promises": "/empty.mjs",
};
const PAGE =
  '<!doctype html><meta charset="utf-8">' +
  `<script type="importmap">${JSON.stringify({ imports: IMPORTS })}</script>` +
  '<script type="module" src="/page.mjs"></script>';
const VOICE = /^https:\/\/huggingface\.co\/[^?#]*\/voices\/([A-Za-z0-9_]+)\.bin$/;

function serveRoute(root, outDir) {
  return (request, url, response) => {
    const [, head, ...rest] = url.pathname.split("/");
    if (request.method === "POST" && head === "out" && /^\d+\.f32$/.test(rest.join("/"))) {
      const file = createWriteStream(path.join(outDir, rest[0]));
      request.pipe(file).on("finish", () => response.end("ok"));
      return true;
    }
    if (head === "" || head === "empty.mjs") {
      response.setHeader("Content-Type", head ? "text/javascript" : "text/html");
      response.end(head ? "export default {};" : PAGE);
      return true;
    }
    if (head === "page.mjs") return path.join(HERE, "page.mjs");
    if (head === "js") return within(MODULES, decodeURIComponent(rest.join("/")));
    if (head === "models") return within(root, decodeURIComponent(rest.join("/")));
    return null;
  };
}

// The page's requests: its own server's, and kokoro-js's voice packs from its package.
function offline(origin) {
  return async (request) => {
    const url = request.url();
    const voice = url.match(VOICE);
    if (url.startsWith(origin)) return request.continue();
    if (!voice) {
      process.stderr.write(`refused: ${url}\n`);
      return request.abort();
    }
    try {
      const body = await readFile(path.join(MODULES, "kokoro-js", "voices", `${voice[1]}.bin`));
      // CORS and CORP headers: the page is cross-origin isolated (COEP require-corp).
      const headers = {
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
      };
      return request.respond({ status: 200, contentType: "application/octet-stream", headers, body });
    } catch {
      return request.respond({ status: 404, body: "" });
    }
  };
}

async function main() {
  const [root, model, dtype, device, threads, requestsFile, outDir, chromium, gpu] =
    process.argv.slice(2);
  const requests = JSON.parse(await readFile(requestsFile, "utf-8"));
  const route = serveRoute(path.resolve(root), path.resolve(outDir));
  await withPage({ chromium, gpu, route, intercept: offline }, (page) =>
    page.evaluate((...args) => window.speak(...args), model, dtype, device, Number(threads), requests),
  );
  const version = async (name) =>
    JSON.parse(await readFile(path.join(MODULES, name, "package.json"), "utf-8")).version;
  // No times: a software adapter's say nothing about a GPU.
  send({
    versions: {
      "kokoro-js": await version("kokoro-js"),
      "@huggingface/transformers": await version("@huggingface/transformers"),
      "onnxruntime-web": await version("onnxruntime-web"),
      device,
    },
  });
}

runMain(main);
