// One Kokoro ONNX model in onnxruntime-web's WebAssembly build (the browser's CPU backend),
// under Node.js. parity/wasm.py starts it and talks JSON lines over stdin/stdout:
//   out, once:  {"ready": true, "inputs": [...], "outputs": [...], "load_seconds": s, "version": v}
//   in:         {"ids": [int, ...], "style": [256 floats], "speed": float}
//   out:        {"seconds": s, "samples": n}      (time of session.run alone, measured here)
// Errors go out as {"error": "..."}; the process exits when stdin closes.
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-web";
import { audioNameOf, kokoroFeeds } from "./feeds.mjs";
import { answerLines, runMain, send } from "./lines.mjs";

async function main() {
  const [modelPath, threads = "1"] = process.argv.slice(2);
  // A page without cross-origin isolation gets one thread; that is what users mostly ship.
  ort.env.wasm.numThreads = Number(threads);
  ort.env.logLevel = "error";
  const bytes = await readFile(modelPath);
  const loadStart = performance.now();
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  send({
    ready: true,
    inputs: session.inputNames,
    outputs: session.outputNames,
    load_seconds: (performance.now() - loadStart) / 1000,
    version: ort.env.versions?.web ?? null,
  });
  const audioName = audioNameOf(session);
  await answerLines(async (request) => {
    const feeds = kokoroFeeds(session, request);
    const start = performance.now();
    const outputs = await session.run(feeds, [audioName]);
    const seconds = (performance.now() - start) / 1000;
    const samples = outputs[audioName].data.length;
    for (const tensor of Object.values(outputs)) tensor.dispose?.();
    return { seconds, samples };
  });
  await session.release();
}

runMain(main);
