// bt-dagster's Node runner: loads one pipeline file and serves transform requests as JSONL.
//
//   node --import <tsx loader> runner.mjs FILE
//
// stdout is the protocol only: a private handle on the original stream is kept before the
// user's file is imported, and console.* and any other stdout writes go to stderr (the logs).
// Messages (one JSON object a line; see docs/BT_COMPAT.md §8):
//   node->py {op:"ready", pipelines:[{name, source, target, transformSource}], dagster, node}
//            {op:"fatal", message, stack}                       (load failed; exits 1)
//   py->node {op:"transform", req, pipeline, args, trace:{object_type, object_id, root_span_id}}
//   node->py {op:"result", req, value} | {op:"error", req, name, message, stack}
//   node->py {op:"call", call, req, method:"getSpans", spanType, includeScorers}
//   py->node {op:"reply", call, value} | {op:"reply", call, error}
//   py->node {op:"shutdown"} (or stdin closed): exit 0
import { register } from "node:module";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import path from "node:path";

const protocolOut = process.stdout;
const protocolWrite = process.stdout.write.bind(process.stdout);
const stderrWrite = process.stderr.write.bind(process.stderr);
process.stdout.write = (chunk, encoding, callback) => stderrWrite(chunk, encoding, callback);
for (const level of ["log", "info", "debug", "dir", "table", "trace"]) {
  const original = console[level];
  if (typeof original === "function") console[level] = (...args) => console.error(...args);
}

function send(message) {
  protocolWrite(JSON.stringify(message, jsonSafe) + "\n");
}

function jsonSafe(_key, value) {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

function errorFields(error) {
  if (error instanceof Error) {
    return { name: error.name || "Error", message: error.message, stack: error.stack || "" };
  }
  return { name: "Error", message: String(error), stack: "" };
}

register("./resolve-hook.mjs", import.meta.url);

const file = path.resolve(process.argv[2] ?? "");
let pipelines = [];
let dagster = null;
try {
  globalThis.__braintrust_dataset_pipelines = [];
  const namespace = await import(pathToFileURL(file).href);
  pipelines = [...new Set(globalThis.__braintrust_dataset_pipelines)];
  dagster = namespace.dagster ?? namespace.default?.dagster ?? null;
} catch (error) {
  send({ op: "fatal", ...errorFields(error) });
  process.exit(1);
}

const byName = new Map();
const listing = pipelines.map((p) => {
  // bt's default name is the file stem; Python reports duplicate names, so the last one wins here.
  byName.set(p.name || path.parse(file).name, p);
  return { name: p.name ?? null, source: p.source, target: p.target, transformSource: String(p.transform) };
});
send({ op: "ready", pipelines: listing, dagster, node: process.version });

// -- host calls (trace.getSpans answered by Python from the trace data it holds) -------------
let nextCall = 0;
const calls = new Map();

function hostCall(req, method, params) {
  const call = ++nextCall;
  return new Promise((resolve, reject) => {
    calls.set(call, { resolve, reject });
    send({ op: "call", call, req, method, ...params });
  });
}

function makeTrace(req, configuration) {
  return {
    getConfiguration: () => ({ ...configuration }),
    getSpans: ({ spanType, includeScorers } = {}) =>
      hostCall(req, "getSpans", { spanType: spanType ?? null, includeScorers: Boolean(includeScorers) }),
    getThread: async () => {
      throw new Error(
        "trace.getThread() is not supported in bt-dagster pipelines (it needs Braintrust's hosted " +
          "preprocessor functions). Build the conversation from `await trace.getSpans()` instead.",
      );
    },
    toJSON: () => ({ trace_ref: { ...configuration } }),
  };
}

async function transform(message) {
  const pipeline = byName.get(message.pipeline);
  try {
    if (!pipeline) throw new Error(`No dataset pipeline named "${message.pipeline}" in ${file}.`);
    const args = { ...message.args, trace: makeTrace(message.req, message.trace) };
    const value = await pipeline.transform(args);
    send({ op: "result", req: message.req, value: value === undefined ? null : value });
  } catch (error) {
    send({ op: "error", req: message.req, ...errorFields(error) });
  }
}

function reply(message) {
  const pending = calls.get(message.call);
  if (!pending) return;
  calls.delete(message.call);
  if (message.error) pending.reject(new Error(message.error));
  else pending.resolve(message.value);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const message = JSON.parse(line);
  if (message.op === "transform") void transform(message); // never awaited: requests overlap
  else if (message.op === "reply") reply(message);
  else if (message.op === "shutdown") lines.close();
});
lines.on("close", () => {
  protocolOut.end?.();
  process.exit(0);
});
