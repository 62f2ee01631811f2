// Dawn's WebGPU adapter for Node.js, through the `webgpu` npm package (a prebuilt dawn.node),
// with the globals onnxruntime-web looks for: used by dawn.mjs (one model, parity's sessions)
// and by kokoro-js/speak.mjs (the kokoro-js client on device "webgpu").
import { create, globals } from "webgpu";

// onnxruntime-web uploads straight from its WebAssembly memory, which is a SharedArrayBuffer
// when threaded; dawn.node refuses views of one ("not an ArrayBuffer"), so copy those first.
function acceptSharedViews(queue) {
  const { writeBuffer } = queue.prototype;
  queue.prototype.writeBuffer = function (buffer, offset, data, dataOffset, size) {
    const shared = typeof SharedArrayBuffer !== "undefined" && data?.buffer instanceof SharedArrayBuffer;
    const copy = shared ? new data.constructor(data) : data;
    return writeBuffer.call(this, buffer, offset, copy, dataOffset, size);
  };
}

// Dawn's adapter, with onnxruntime-web's view of the globals it needs.
export async function dawnAdapter() {
  Object.assign(globalThis, globals);
  acceptSharedViews(globals.GPUQueue);
  const gpu = create([]);
  // onnxruntime-web asks navigator.gpu for its adapter; Node 20 has no navigator.
  Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true });
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      "Dawn found no WebGPU adapter: it needs a Vulkan driver it accepts, such as Mesa 25's " +
        "lavapipe (Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers; its " +
        "own 22.3 is refused); see docs/webgpu.md",
    );
  }
  return { gpu, adapter };
}
