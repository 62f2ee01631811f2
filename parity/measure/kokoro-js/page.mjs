// kokoro-js in a page, as a site that bundles it runs it: its ES modules and transformers.js's
// web build resolved by browser.mjs's import map from this folder's lockfile, the model from a
// local folder (remote models off), the voices answered from kokoro-js's own voices/*.bin.
import { env, Tensor } from "@huggingface/transformers";
import { KokoroTTS } from "kokoro-js";

// requests: [{ids, voice, speed}]; the waveform of request i is posted to /out/i.f32.
window.speak = async (model, dtype, device, threads, requests) => {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = "/models/";
  env.backends.onnx.wasm.wasmPaths = "/js/onnxruntime-web/dist/";
  env.backends.onnx.wasm.numThreads = threads;
  const tts = await KokoroTTS.from_pretrained(model, { dtype, device });
  for (const [index, request] of requests.entries()) {
    const ids = new Tensor("int64", BigInt64Array.from(request.ids, BigInt), [
      1,
      request.ids.length,
    ]);
    const audio = await tts.generate_from_ids(ids, { voice: request.voice, speed: request.speed });
    if (audio.sampling_rate !== 24000) throw new Error(`sampling rate ${audio.sampling_rate}`);
    const samples = Float32Array.from(audio.audio);
    const posted = await fetch(`/out/${index}.f32`, { method: "POST", body: samples });
    if (!posted.ok) throw new Error(`posting waveform ${index}: HTTP ${posted.status}`);
  }
  return { done: requests.length };
};

window.pageReady = true;
