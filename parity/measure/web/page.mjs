// The page side of browser.mjs: one ONNX model in onnxruntime-web inside Chromium, on the
// WebGPU backend or the WebAssembly one. browser.mjs serves this file, onnxruntime-web's dist
// folder under /ort/, the model under /model and tensors under /tensor/NAME; the page fetches
// its feeds there and posts every output back, so no tensor goes through the DevTools protocol.
import { adapterInfo, metadata, runOnce } from "/ort-web.mjs";
import * as ort from "/ort/ort.webgpu.min.mjs";

let session = null;

// provider: "webgpu" or "wasm"; threads: WebAssembly threads (the page is cross-origin isolated).
window.openSession = async (provider, threads) => {
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  const adapter = provider === "webgpu" ? await adapterInfo(navigator.gpu) : null;
  if (provider === "webgpu" && adapter === null) {
    throw new Error("this Chromium offers no WebGPU adapter (navigator.gpu.requestAdapter)");
  }
  session = await ort.InferenceSession.create("/model", {
    executionProviders: [provider],
    graphOptimizationLevel: "all",
  });
  // No load time: only runs are timed (parity bench), labelled with the adapter.
  return {
    inputs: metadata(session.inputMetadata),
    outputs: metadata(session.outputMetadata),
    adapter,
  };
};

// Tensors travel over the local server: read from /tensor/NAME, posted back there.
window.runSession = (feeds, fetches) =>
  runOnce(ort, session, { feeds, fetches }, readTensor, postTensor);

async function readTensor(file) {
  return (await fetch(`/tensor/${file}`)).arrayBuffer();
}

async function postTensor(file, bytes) {
  const response = await fetch(`/tensor/${file}`, { method: "POST", body: bytes });
  if (!response.ok) throw new Error(`posting ${file}: HTTP ${response.status}`);
}

window.pageReady = true;
