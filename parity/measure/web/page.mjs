// The page side of browser.mjs: one ONNX model in onnxruntime-web inside Chromium, on the
// WebGPU backend or the WebAssembly one. browser.mjs serves this file, onnxruntime-web's dist
// folder under /ort/, the model under /model and tensors under /tensor/NAME; the page fetches
// its feeds there and posts every output back, so no tensor goes through the DevTools protocol.
import { DTYPES, adapterInfo, metadata } from "/adapter.mjs";
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

// feeds: [{name, dtype, dims, file}]; fetches: output names. Each output is posted to
// /tensor/out-I; the answer lists them with dtype and dims.
window.runSession = async (feeds, fetches) => {
  const inputs = {};
  for (const feed of feeds) {
    const bytes = await (await fetch(`/tensor/${feed.file}`)).arrayBuffer();
    inputs[feed.name] = new ort.Tensor(feed.dtype, new DTYPES[feed.dtype](bytes), feed.dims);
  }
  // Timed here, not in Node: the feeds' and outputs' trips through files are not the model's.
  const start = performance.now();
  const outputs = await session.run(inputs, fetches);
  const seconds = (performance.now() - start) / 1000;
  const answer = [];
  for (const [index, name] of fetches.entries()) {
    const tensor = outputs[name];
    const data = tensor.location === "cpu" ? tensor.data : await tensor.getData();
    const file = `out-${index}`;
    const response = await fetch(`/tensor/${file}`, {
      method: "POST",
      body: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    if (!response.ok) throw new Error(`posting ${name}: HTTP ${response.status}`);
    answer.push({ name, dtype: tensor.type, dims: tensor.dims, file });
  }
  for (const tensor of Object.values(outputs)) tensor.dispose?.();
  return { outputs: answer, seconds };
};

window.pageReady = true;
