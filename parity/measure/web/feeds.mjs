// The inputs of one Kokoro request, for our graphs (input_ids) and kokoro-onnx's (tokens) alike.
import * as ort from "onnxruntime-web";

export const idsNameOf = (session) =>
  session.inputNames.includes("tokens") ? "tokens" : "input_ids";
export const audioNameOf = (session) =>
  session.outputNames.includes("audio") ? "audio" : "waveform";

// request: {"ids": [int, ...], "style": [256 floats], "speed": float}
export function kokoroFeeds(session, request) {
  return {
    [idsNameOf(session)]: new ort.Tensor("int64", BigInt64Array.from(request.ids, BigInt), [
      1,
      request.ids.length,
    ]),
    style: new ort.Tensor("float32", Float32Array.from(request.style), [1, 256]),
    speed: new ort.Tensor("float32", Float32Array.from([request.speed]), [1]),
  };
}
