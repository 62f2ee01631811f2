// One Kokoro ONNX model in onnxruntime-web's WebAssembly build with ONNX Runtime's profiler on,
// for parity/measure/op_profile.py. Arguments: MODEL THREADS REQUESTS.json, where the file
// holds [{"ids": [...], "style": [256 floats], "speed": s}, ...]; each request runs once, in order.
// Output (stdout): one line {"runs": [{"seconds": s, "samples": n}, ...]}, then the profile:
// ONNX Runtime's WebAssembly build prints its JSON events to stdout when profiling ends, one
// event per line, because a page has no file system to write the usual profile file to.
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-web";
import { audioNameOf, kokoroFeeds } from "./feeds.mjs";

async function main() {
  const [modelPath, threads = "1", requestsPath] = process.argv.slice(2);
  ort.env.wasm.numThreads = Number(threads);
  ort.env.logLevel = "error";
  const requests = JSON.parse(await readFile(requestsPath, "utf8"));
  const session = await ort.InferenceSession.create(await readFile(modelPath), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    enableProfiling: true,
  });
  const audioName = audioNameOf(session);
  const runs = [];
  for (const request of requests) {
    const feeds = kokoroFeeds(session, request);
    const start = performance.now();
    const outputs = await session.run(feeds, [audioName]);
    runs.push({
      seconds: (performance.now() - start) / 1000,
      samples: outputs[audioName].data.length,
    });
  }
  process.stdout.write(`${JSON.stringify({ runs })}\n`);
  session.endProfiling();
  await session.release();
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ error: String(error?.message ?? error).split("\n")[0] })}\n`);
  process.exit(1);
});
