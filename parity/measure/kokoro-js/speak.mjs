// kokoro-js 1.2.1 speaks phoneme ids from a local model folder, offline, on the onnxruntime-web
// its transformers.js depends on: WebAssembly, or with DEVICE "webgpu" WebGPU on Dawn (Chromium's
// WebGPU implementation, ../web/dawn-adapter.mjs) on the system's Vulkan driver, the adapter
// with shader-f16 here. parity/measure/kokoro_js.py runs it once per model:
//   node speak.mjs ROOT MODEL DTYPE THREADS REQUESTS.json OUT_DIR [DEVICE [ORT_DIST]]
// ORT_DIST: another onnxruntime-web's dist folder, given to the client instead of its own (a
// control: the same client on a newer runtime).
// REQUESTS.json is [{"ids": [int, ...], "voice": "jf_alpha", "speed": 1}, ...] (ids padded
// with 0 at both ends, as kokoro-js's tokenizer makes them); the waveform of request i goes to
// OUT_DIR/i.f32 (float32, little-endian). One JSON line on stdout:
//   {"load_seconds": s, "seconds": [s, ...], "versions": {...}}  or  {"error": "..."}
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { dawnAdapter } from "../web/dawn-adapter.mjs";
import { runMain, send } from "../web/lines.mjs";

const require = createRequire(import.meta.url);

async function clientOrtWeb(device, ortDist) {
  // The onnxruntime-web that kokoro-js's transformers.js resolves (what a page bundles): its
  // Node build for WebAssembly; for WebGPU, which that build lacks, the WebGPU build beside it
  // (the same version and WebAssembly binary as the default bundle a page loads).
  const fromTransformers = createRequire(require.resolve("@huggingface/transformers"));
  const entry = ortDist
    ? path.join(path.resolve(ortDist), "ort.node.min.js")
    : fromTransformers.resolve("onnxruntime-web");
  const dist = `${path.dirname(entry)}/`;
  const file = device === "webgpu" ? path.join(dist, "ort.webgpu.mjs") : entry;
  const ort = await import(pathToFileURL(file).href);
  return { ort: ort.default ?? ort, dist };
}

async function main() {
  const [root, model, dtype, threads, requestsFile, outDir, device = "wasm", ortDist] =
    process.argv.slice(2);
  if (!["wasm", "webgpu"].includes(device)) throw new Error(`speak.mjs: no device ${device}`);
  const dawn = device === "webgpu" ? await dawnAdapter() : null;
  const { ort, dist } = await clientOrtWeb(device, ortDist);
  // Under Node.js, transformers.js would pick onnxruntime-node (the CPU binary). It takes a
  // runtime from this symbol instead; every session is pinned to the provider kokoro-js's
  // device selects in a browser. transformers.js adds nothing else for "webgpu" on this
  // model (it sets output locations only for a decoder's cache); its float16 check is
  // shader-f16, which Dawn's adapter here has. Under Node.js it passes a file path, which
  // only the Node build opens; the WebGPU build is given the bytes, as a page fetches them.
  globalThis[Symbol.for("onnxruntime")] = {
    ...ort,
    InferenceSession: {
      create: async (model, options = {}) => {
        const bytes = dawn && typeof model === "string" ? await readFile(model) : model;
        return ort.InferenceSession.create(bytes, { ...options, executionProviders: [device] });
      },
    },
  };
  ort.env.wasm.numThreads = Number(threads);
  ort.env.wasm.wasmPaths = dist; // local files: no CDN
  if (dawn) ort.env.webgpu.adapter = dawn.adapter;
  const transformers = await import("@huggingface/transformers");
  transformers.env.allowRemoteModels = false;
  transformers.env.localModelPath = root.endsWith("/") ? root : `${root}/`;
  const { KokoroTTS } = await import("kokoro-js");

  const requests = JSON.parse(await readFile(requestsFile, "utf-8"));
  const loadStart = performance.now();
  // "auto" passes transformers.js's device check with the runtime above, pinned to DEVICE.
  const tts = await KokoroTTS.from_pretrained(model, { dtype, device: "auto" });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const seconds = [];
  for (const [index, request] of requests.entries()) {
    const ids = new transformers.Tensor("int64", BigInt64Array.from(request.ids, BigInt), [
      1,
      request.ids.length,
    ]);
    const start = performance.now();
    const audio = await tts.generate_from_ids(ids, { voice: request.voice, speed: request.speed });
    // A software adapter's times say nothing of a GPU's: none are sent for WebGPU.
    if (!dawn) seconds.push((performance.now() - start) / 1000);
    if (audio.sampling_rate !== 24000) throw new Error(`sampling rate ${audio.sampling_rate}`);
    const samples = Float32Array.from(audio.audio);
    await writeFile(path.join(outDir, `${index}.f32`), Buffer.from(samples.buffer));
  }
  const here = path.dirname(new URL(import.meta.url).pathname);
  const version = async (name) =>
    JSON.parse(await readFile(path.join(here, "node_modules", name, "package.json"), "utf-8"))
      .version;
  send({
    load_seconds: dawn ? null : loadSeconds,
    seconds,
    versions: {
      "kokoro-js": await version("kokoro-js"),
      "@huggingface/transformers": await version("@huggingface/transformers"),
      "onnxruntime-web": ort.env.versions?.web ?? null,
    },
  });
}

runMain(main);
