// The page side of browser.mjs: one ONNX model in onnxruntime-web inside Chromium, on the
// WebGPU backend or the WebAssembly one. browser.mjs serves this file, onnxruntime-web's dist
// folder under /ort/, the model under /model and tensors under /tensor/NAME; the page fetches
// its feeds there and posts every output back, so no tensor goes through the DevTools protocol.
import * as ort from "/ort/ort.webgpu.min.mjs";

const DTYPES = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

let session = null;

async function adapterInfo() {
  if (!navigator.gpu) return null;
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return null;
  const info = adapter.info ?? {};
  return {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    description: info.description ?? "",
    fallback: Boolean(adapter.isFallbackAdapter ?? info.isFallbackAdapter),
    f16: adapter.features.has("shader-f16"),
  };
}

function metadata(entries) {
  return entries.map((entry) => ({
    name: entry.name,
    type: entry.isTensor ? entry.type : "non-tensor",
    shape: entry.isTensor ? entry.shape.map((d) => (typeof d === "number" ? d : String(d))) : [],
  }));
}

// provider: "webgpu" or "wasm"; threads: WebAssembly threads (the page is cross-origin isolated).
window.openSession = async (provider, threads) => {
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  const adapter = provider === "webgpu" ? await adapterInfo() : null;
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
