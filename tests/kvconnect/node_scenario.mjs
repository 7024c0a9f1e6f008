// Drives an edgekv node through @deno/kv, the Node.js KV Connect client (HTTP/1.1).
// Usage: node node_scenario.mjs URL [full|wrong-token]   (NODE_PATH names node_modules)
// Needs DENO_KV_ACCESS_TOKEN. Exits non-zero with a message on the first failed check.
import { createRequire } from "node:module";

const require = createRequire(process.env.EDGEKV_NODE_MODULES + "/");
const { openKv, KvU64 } = require("@deno/kv");
const [url, mode = "full"] = process.argv.slice(2);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function eventually(probe, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The next watch frame, or a failed check after 20 s (a lost frame fails, never hangs).
function nextFrame(reader, what, timeoutMs = 20_000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`check failed: no watch frame for ${what}`)), timeoutMs);
  });
  return Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
}

if (mode === "wrong-token") {
  try {
    const kv = await openKv(url);
    await kv.get(["anything"]);
    throw new Error("a wrong token was accepted");
  } catch (error) {
    check(String(error.message).includes("invalid access token"), `unexpected error: ${error.message}`);
    console.log("wrong token refused:", error.message);
  }
  process.exit(0);
}

const kv = await openKv(url);
for await (const entry of kv.list({ prefix: ["node"] })) await kv.delete(entry.key);

const written = await kv.set(["node", "user"], { name: "Grace" });
check(written.ok, "set");
check((await kv.get(["node", "user"])).value.name === "Grace", "strong get");
check((await kv.get(["node", "user"], { consistency: "eventual" })).value.name === "Grace", "eventual get");

for (let i = 0; i < 5; i++) await kv.set(["node", "items", i], `v${i}`);
const many = await kv.getMany([["node", "items", 1], ["node", "nope"]]);
check(many[0].value === "v1" && many[1].value === null, "getMany");

const collect = async (iter) => {
  const out = [];
  for await (const entry of iter) out.push(entry.value);
  return out.join(",");
};
check((await collect(kv.list({ prefix: ["node", "items"] }))) === "v0,v1,v2,v3,v4", "list prefix");
check((await collect(kv.list({ start: ["node", "items", 2], end: ["node", "items", 4] }))) === "v2,v3", "range");
check((await collect(kv.list({ prefix: ["node", "items"] }, { limit: 3, reverse: true }))) === "v4,v3,v2", "reverse");
const page = kv.list({ prefix: ["node", "items"] }, { limit: 3 });
check((await collect(page)) === "v0,v1,v2", "first page");
check((await collect(kv.list({ prefix: ["node", "items"] }, { cursor: page.cursor }))) === "v3,v4", "cursor");

const current = await kv.get(["node", "user"]);
const failed = await kv.atomic().check({ key: ["node", "user"], versionstamp: null }).set(["node", "user"], 1).commit();
check(!failed.ok, "failing check");
const passed = await kv.atomic().check(current).set(["node", "user"], "updated").commit();
check(passed.ok, "passing check");

await kv.atomic().sum(["node", "counter"], 2n).commit();
await kv.atomic().sum(["node", "counter"], 3n).commit();
const counter = await kv.get(["node", "counter"]);
check(counter.value instanceof KvU64 && counter.value.value === 5n, `sum: ${counter.value}`);

await kv.set(["node", "session"], "temporary", { expireIn: 300 });
check((await kv.get(["node", "session"])).value === "temporary", "live before expiry");
await eventually(async () => (await kv.get(["node", "session"])).value === null, "expiry");

await kv.delete(["node", "user"]);
check((await kv.get(["node", "user"])).value === null, "delete");

// @deno/kv sends enqueues to the server: edgekv answers with a clear 400.
try {
  await kv.enqueue("message");
  throw new Error("enqueue was accepted");
} catch (error) {
  check(String(error.message).includes("queues"), `enqueue error: ${error.message}`);
}

// @deno/kv only delivers a watch frame once some watched key exists, so start from a value.
await kv.set(["node", "watched"], 6);
const watched = kv.watch([["node", "watched"]]).getReader();
check((await nextFrame(watched, "the first frame")).value[0].value === 6, "initial watch frame");
await kv.set(["node", "watched"], 7);
let seen = await nextFrame(watched, "the changed value");
while (seen.value[0].value !== 7) seen = await nextFrame(watched, "the changed value");
await watched.cancel();

// Two keys, watched before either exists: every frame shows both keys' current values,
// also the one that did not change. (@deno/kv holds back frames while both are absent.)
const pair = kv.watch([["node", "w1"], ["node", "w2"]]).getReader();
const firstFrame = nextFrame(pair, "the first two-key frame");
await kv.set(["node", "w1"], "one");
let both = (await firstFrame).value;
while (both[0].value !== "one") both = (await nextFrame(pair, "w1 set")).value;
check(both[1].value === null, `w2 before it is set: ${both[1].value}`);
await kv.set(["node", "w2"], "two");
while (both[1].value !== "two") both = (await nextFrame(pair, "w2 set")).value;
check(both[0].value === "one", `w1 after w2 changed: ${both[0].value}`);
await pair.cancel();

// A string written through the gRPC API reads as a JS string. (Values the Deno CLI wrote
// are V8 format 16, which Node 20's deserializer cannot read: a client limitation.)
const fromKvctl = await kv.get(["shared", "from-kvctl"]);
check(fromKvctl.value === "written by kvctl", `string from kvctl: ${fromKvctl.value}`);
const kvctlCounter = await kv.get(["shared", "counter"]);
check(kvctlCounter.value instanceof KvU64 && kvctlCounter.value.value === 42n, "kvctl sum is a KvU64");
await kv.set(["shared", "from-node"], { writtenBy: "node" });

kv.close();
console.log("node scenario passed");
