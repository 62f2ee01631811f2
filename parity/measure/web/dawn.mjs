// One ONNX model on onnxruntime-web's WebGPU backend under Node.js, on Dawn (the WebGPU
// implementation inside Chromium) through its Node bindings, the `webgpu` npm package, which
// ships a prebuilt dawn.node. Dawn takes the system's Vulkan driver: on a machine without a GPU,
// Mesa's lavapipe, which has the shader-f16 feature that Chromium's SwiftShader lacks.
// Arguments and JSON lines as browser.mjs: MODEL TENSOR_DIR PROVIDER THREADS [ORT_DIST]; tensors
// are raw files in TENSOR_DIR, read and written here directly.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dawnAdapter } from "./dawn-adapter.mjs";
import { adapterInfo, metadata, runOnce } from "./ort-web.mjs";
import { answerLines, firstLine, runMain, send } from "./lines.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OWN_ORT_DIST = path.join(HERE, "node_modules", "onnxruntime-web", "dist");

// Argument "probe": one line with the adapter Dawn offers (or the error), then exit.
async function main() {
  const [modelPath, tensorDir, provider, threads, ortDist] = process.argv.slice(2);
  if (modelPath === "probe") {
    try {
      const { gpu, adapter } = await dawnAdapter();
      send({ ready: true, adapter: await adapterInfo(gpu, adapter) });
    } catch (error) {
      send({ ready: true, adapter: null, why: firstLine(error) });
    }
    process.exit(0);
  }
  if (provider !== "webgpu") throw new Error(`dawn.mjs runs WebGPU only, not ${provider}`);
  const { gpu, adapter } = await dawnAdapter();
  const ortUrl = pathToFileURL(path.join(path.resolve(ortDist || OWN_ORT_DIST), "ort.webgpu.mjs"));
  const ort = await import(ortUrl.href);
  ort.env.wasm.numThreads = Number(threads);
  ort.env.logLevel = "error";
  ort.env.webgpu.adapter = adapter;
  const session = await ort.InferenceSession.create(await readFile(modelPath), {
    executionProviders: ["webgpu"],
    graphOptimizationLevel: "all",
  });
  send({
    ready: true,
    inputs: metadata(session.inputMetadata),
    outputs: metadata(session.outputMetadata),
    adapter: await adapterInfo(gpu, adapter),
  });
  await answerLines((message) => run(ort, session, tensorDir, message));
  await session.release();
}

// As page.mjs's runSession, with the tensor files read and written here directly.
function run(ort, session, tensorDir, message) {
  const file = (name) => path.join(tensorDir, path.basename(name));
  // A copy into a fresh ArrayBuffer: a Buffer's offset need not suit an int64 view.
  const read = async (name) => new Uint8Array(await readFile(file(name))).buffer;
  const write = (name, bytes) => writeFile(file(name), bytes);
  return runOnce(ort, session, message, read, write);
}

runMain(main);
