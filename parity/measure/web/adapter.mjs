// What a WebGPU adapter is, as browser.mjs's page and dawn.mjs report it to the Python side
// (parity/judge/browser_session.py's Adapter). Plain JavaScript: the page imports it too.
export async function adapterInfo(gpu, adapter = null) {
  const found = adapter ?? (gpu ? await gpu.requestAdapter() : null);
  if (!found) return null;
  const info = found.info ?? {};
  return {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    description: info.description ?? "",
    fallback: Boolean(found.isFallbackAdapter ?? info.isFallbackAdapter),
    f16: found.features.has("shader-f16"),
  };
}

export function metadata(entries) {
  return entries.map((entry) => ({
    name: entry.name,
    type: entry.isTensor ? entry.type : "non-tensor",
    shape: entry.isTensor ? entry.shape.map((d) => (typeof d === "number" ? d : String(d))) : [],
  }));
}

// onnxruntime-web's tensor type -> the typed array its data travels in.
export const DTYPES = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};
