// kokoro-js 1.2.1 speaks phoneme ids from a local model folder, offline, on the WebAssembly
// build of onnxruntime-web that its transformers.js depends on. parity/measure/kokoro_js.py
// runs it once per model:
//   node speak.mjs ROOT MODEL DTYPE THREADS REQUESTS.json OUT_DIR
// REQUESTS.json is [{"ids": [int, ...], "voice": "jf_alpha", "speed": 1}, ...] (ids padded
// with 0 at both ends, as kokoro-js's tokenizer makes them); the waveform of request i goes to
// OUT_DIR/i.f32 (float32, little-endian). One JSON line on stdout:
//   {"load_seconds": s, "seconds": [s, ...], "versions": {...}}  or  {"error": "..."}
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { runMain, send } from "../web/lines.mjs";

const require = createRequire(import.meta.url);

async function clientOrtWeb() {
  // The onnxruntime-web that kokoro-js's transformers.js resolves (what a page bundles).
  const fromTransformers = createRequire(require.resolve("@huggingface/transformers"));
  const entry = fromTransformers.resolve("onnxruntime-web");
  const ort = await import(pathToFileURL(entry).href);
  return { ort: ort.default ?? ort, dist: `${path.dirname(entry)}/` };
}

async function main() {
  const [root, model, dtype, threads, requestsFile, outDir] = process.argv.slice(2);
  const { ort, dist } = await clientOrtWeb();
  // Under Node.js, transformers.js would pick onnxruntime-node (the CPU binary). It takes a
  // runtime from this symbol instead; every session is pinned to the wasm provider, which is
  // what kokoro-js's device "wasm" selects in a browser.
  globalThis[Symbol.for("onnxruntime")] = {
    ...ort,
    InferenceSession: {
      create: (bytes, options = {}) =>
        ort.InferenceSession.create(bytes, { ...options, executionProviders: ["wasm"] }),
    },
  };
  ort.env.wasm.numThreads = Number(threads);
  ort.env.wasm.wasmPaths = dist; // local files: no CDN
  const transformers = await import("@huggingface/transformers");
  transformers.env.allowRemoteModels = false;
  transformers.env.localModelPath = root.endsWith("/") ? root : `${root}/`;
  const { KokoroTTS } = await import("kokoro-js");

  const requests = JSON.parse(await readFile(requestsFile, "utf-8"));
  const loadStart = performance.now();
  // "auto" passes transformers.js's device check with the runtime above; the provider is wasm.
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
    seconds.push((performance.now() - start) / 1000);
    if (audio.sampling_rate !== 24000) throw new Error(`sampling rate ${audio.sampling_rate}`);
    const samples = Float32Array.from(audio.audio);
    await writeFile(path.join(outDir, `${index}.f32`), Buffer.from(samples.buffer));
  }
  const here = path.dirname(new URL(import.meta.url).pathname);
  const version = async (name) =>
    JSON.parse(await readFile(path.join(here, "node_modules", name, "package.json"), "utf-8"))
      .version;
  send({
    load_seconds: loadSeconds,
    seconds,
    versions: {
      "kokoro-js": await version("kokoro-js"),
      "@huggingface/transformers": await version("@huggingface/transformers"),
      "onnxruntime-web": ort.env.versions?.web ?? null,
    },
  });
}

runMain(main);
