// The JSON-lines protocol every Node side here speaks with Python (session.mjs, browser.mjs,
// dawn.mjs, ../kokoro-js): one message per line each way. No browser code, so a script that
// drives none (session.mjs, dawn.mjs) does not load puppeteer-core.
import readline from "node:readline";

// The protocol owns stdout: what a library logs (onnxruntime-web's warnings, emscripten's
// prints) goes to stderr, which the Python side keeps for its error lines.
for (const level of ["log", "info", "debug", "warn"]) console[level] = console.error;

export const firstLine = (error) => String(error?.message ?? error).split("\n")[0];
// One JSON line to the Python side.
export const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

// Run main; an error it throws goes out as {"error": its first line}, and the process fails.
export function runMain(main) {
  main().catch((error) => {
    send({ error: firstLine(error) });
    process.exit(1);
  });
}

// Answer each JSON line on stdin with what answer(message) resolves to, or {"error": its first
// line} where it throws, until stdin closes.
export async function answerLines(answer) {
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      send(await answer(JSON.parse(line)));
    } catch (error) {
      send({ error: firstLine(error) });
    }
  }
}
