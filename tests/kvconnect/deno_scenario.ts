// Drives an edgekv node through the Deno CLI's own KV Connect client.
// Usage: deno run --unstable-kv -A deno_scenario.ts URL [full|wrong-token|scoped|cluster-write|cluster-read STAMP]
// Needs DENO_KV_ACCESS_TOKEN. Exits non-zero with a message on the first failed check.

const [url, mode = "full"] = Deno.args;

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The next watch frame, or a failed check after 20 s (a lost frame fails, never hangs).
function nextFrame<T>(reader: ReadableStreamDefaultReader<T>, what: string, timeoutMs = 20_000) {
  let timer: number | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`check failed: no watch frame for ${what}`)), timeoutMs);
  });
  return Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
}

if (mode === "wrong-token") {
  try {
    // Deno performs the metadata exchange when opening; either step must refuse.
    const kv = await Deno.openKv(url);
    await kv.get(["anything"]);
    throw new Error("a wrong token was accepted");
  } catch (error) {
    const message = String((error as Error).message);
    check(message.includes("invalid access token"), `unexpected error: ${message}`);
    console.log("wrong token refused:", message);
  }
  Deno.exit(0);
}

if (mode === "scoped") {
  // With a token scoped to ["edge"] (read and write): everything under it works, anything
  // outside it is refused with PERMISSION_DENIED, and a write with one part outside is
  // refused whole.
  const kv = await Deno.openKv(url);
  const written = await kv.set(["edge", "greeting"], "hello over https");
  check(written.ok, "a write inside the scope");
  const read = await kv.get<string>(["edge", "greeting"]);
  check(read.value === "hello over https", `read inside the scope: ${read.value}`);
  const listed = [];
  for await (const entry of kv.list({ prefix: ["edge"] })) listed.push(entry.key);
  check(listed.length === 1, `list inside the scope: ${JSON.stringify(listed)}`);
  const refusals: Record<string, () => Promise<unknown>> = {
    "a read outside": () => kv.get(["orders", "1"]),
    "a write outside": () => kv.set(["orders", "1"], "by the edge"),
    "a list of everything": async () => {
      for await (const _ of kv.list({ prefix: [] })) { /* refused before the first */ }
    },
    "an atomic write half outside": () =>
      kv.atomic().set(["edge", "half"], "inside").set(["orders", "2"], "outside").commit(),
    "a watch outside": async () => {
      const reader = kv.watch([["edge", "greeting"], ["orders", "1"]]).getReader();
      try {
        await nextFrame(reader, "a watch outside the scope");
      } finally {
        reader.releaseLock();
      }
    },
  };
  for (const [what, attempt] of Object.entries(refusals)) {
    try {
      await attempt();
    } catch (error) {
      const message = String((error as Error).message);
      check(message.includes("PERMISSION_DENIED"), `${what}: unexpected error: ${message}`);
      continue;
    }
    throw new Error(`check failed: ${what} was allowed`);
  }
  check((await kv.get(["edge", "half"])).versionstamp === null, "nothing of the refused write landed");
  console.log("scoped token held to its prefix");
  Deno.exit(0);
}

if (mode === "cluster-write") {
  // Against one node of a cluster: the write is forwarded to the leader. The first one may
  // wait for an election, so a refusal is retried until a deadline.
  const kv = await Deno.openKv(url);
  let result: Deno.KvCommitResult | undefined;
  await eventually(async () => {
    try {
      result = await kv.set(["cluster", "greeting"], { text: "hello from another region" });
      return true;
    } catch (_) {
      return false;
    }
  }, "a leader to take the first write");
  const strong = await kv.get(["cluster", "greeting"]);
  check(strong.versionstamp === result!.versionstamp, "strong read after write sees it");
  console.log(result!.versionstamp);
  Deno.exit(0);
}

if (mode === "cluster-read") {
  // Against another node (another region): an eventual read catches up with the write,
  // and a strong read (read index through the leader) sees it at once.
  const stamp = Deno.args[2];
  const kv = await Deno.openKv(url);
  const strong = await kv.get<{ text: string }>(["cluster", "greeting"]);
  check(strong.versionstamp === stamp, `strong read in another region: ${strong.versionstamp} != ${stamp}`);
  check(strong.value?.text === "hello from another region", "strong value");
  await eventually(async () => {
    const eventual = await kv.get(["cluster", "greeting"], { consistency: "eventual" });
    return eventual.versionstamp === stamp;
  }, "the eventual read in another region to catch up");
  // Compare-and-set from this region against the other region's write.
  const swapped = await kv.atomic()
    .check({ key: ["cluster", "greeting"], versionstamp: stamp })
    .set(["cluster", "greeting"], { text: "answered" })
    .commit();
  check(swapped.ok, "check against the other region's versionstamp passes");
  const stale = await kv.atomic()
    .check({ key: ["cluster", "greeting"], versionstamp: stamp })
    .set(["cluster", "greeting"], { text: "lost" })
    .commit();
  check(!stale.ok, "a second check with the old versionstamp fails");
  console.log("cluster read ok");
  Deno.exit(0);
}

const kv = await Deno.openKv(url);
for await (const entry of kv.list({ prefix: ["deno"] })) await kv.delete(entry.key);

// set / get, strong and eventual
const written = await kv.set(["deno", "user"], { name: "Ada", langs: ["rust", "ts"] });
check(written.ok, "set");
const strong = await kv.get<{ name: string }>(["deno", "user"]);
check(strong.value?.name === "Ada", `strong get: ${JSON.stringify(strong.value)}`);
check(strong.versionstamp === written.versionstamp, "versionstamp of get equals set's");
// On a cluster follower the local replica may lag the leader by a heartbeat.
await eventually(async () => {
  const eventual = await kv.get<{ name: string }>(["deno", "user"], { consistency: "eventual" });
  return eventual.value?.name === "Ada";
}, "eventual get");

// getMany
for (let i = 0; i < 5; i++) await kv.set(["deno", "items", i], `v${i}`);
const many = await kv.getMany<string[]>([["deno", "items", 0], ["deno", "items", 4], ["deno", "missing"]]);
check(many[0].value === "v0" && many[1].value === "v4" && many[2].value === null, "getMany");

// list: prefix, range, limit + reverse, cursor
const collect = async (iter: Deno.KvListIterator<string>) => {
  const out: string[] = [];
  for await (const entry of iter) out.push(entry.value);
  return out.join(",");
};
check((await collect(kv.list({ prefix: ["deno", "items"] }))) === "v0,v1,v2,v3,v4", "list prefix");
check(
  (await collect(kv.list({ start: ["deno", "items", 1], end: ["deno", "items", 3] }))) === "v1,v2",
  "list range",
);
check((await collect(kv.list({ prefix: ["deno", "items"] }, { limit: 2, reverse: true }))) === "v4,v3", "reverse");
const firstPage = kv.list<string>({ prefix: ["deno", "items"] }, { limit: 2 });
check((await collect(firstPage)) === "v0,v1", "first page");
const rest = await collect(kv.list({ prefix: ["deno", "items"] }, { cursor: firstPage.cursor }));
check(rest === "v2,v3,v4", `cursor continues: ${rest}`);

// atomic: a failing check writes nothing; a passing one writes everything
const current = await kv.get(["deno", "user"]);
const failed = await kv.atomic()
  .check({ key: ["deno", "user"], versionstamp: "00000000000000000001" })
  .set(["deno", "user"], "overwritten")
  .commit();
check(!failed.ok, "stale check fails");
check((await kv.get<{ name: string }>(["deno", "user"])).value?.name === "Ada", "failed atomic wrote nothing");
const passed = await kv.atomic()
  .check(current)
  .check({ key: ["deno", "fresh"], versionstamp: null })
  .set(["deno", "user"], "updated")
  .set(["deno", "fresh"], 1)
  .commit();
check(passed.ok, "passing checks commit");
check((await kv.get(["deno", "fresh"])).value === 1, "fresh written");

// sum on KvU64
await kv.atomic().sum(["deno", "counter"], 5n).commit();
await kv.atomic().sum(["deno", "counter"], 7n).commit();
const counter = await kv.get<Deno.KvU64>(["deno", "counter"]);
check(counter.value instanceof Deno.KvU64 && counter.value.value === 12n, `sum: ${counter.value}`);

// expireIn: gone once expired
await kv.set(["deno", "session"], "temporary", { expireIn: 300 });
check((await kv.get(["deno", "session"])).value === "temporary", "live before expiry");
await eventually(async () => (await kv.get(["deno", "session"])).value === null, "expiry");

// delete
await kv.delete(["deno", "fresh"]);
check((await kv.get(["deno", "fresh"])).value === null, "delete");

// watch: the first frame reports the current value, then each change
const reader = kv.watch([["deno", "watched"]]).getReader();
const initial = await nextFrame(reader, "the first frame");
check(initial.value?.[0].value === null, "initial watch frame");
await kv.set(["deno", "watched"], "changed");
let seen = await nextFrame(reader, "the changed value");
while (seen.value?.[0].value !== "changed") seen = await nextFrame(reader, "the changed value");
await reader.cancel();

// watch two keys: every frame shows both keys' current values, also the one that did not
// change (edgekv once sent "unchanged" without the entry, which the CLI reads as null)
const pair = kv.watch([["deno", "w1"], ["deno", "w2"]]).getReader();
const empty = await nextFrame(pair, "the first two-key frame");
check(empty.value?.[0].value === null && empty.value?.[1].value === null, "initial two-key frame");
await kv.set(["deno", "w1"], "one");
let both = await nextFrame(pair, "w1 set");
while (both.value?.[0].value !== "one") both = await nextFrame(pair, "w1 set");
check(both.value?.[1].value === null, `w2 before it is set: ${both.value?.[1].value}`);
await kv.set(["deno", "w2"], "two");
while (both.value?.[1].value !== "two") both = await nextFrame(pair, "w2 set");
check(both.value?.[0].value === "one", `w1 after w2 changed: ${both.value?.[0].value}`);
await pair.cancel();

// queues are not supported: the Deno CLI refuses them itself before sending (other
// clients get edgekv's 400, checked in the @deno/kv scenario)
try {
  await kv.enqueue("message");
  throw new Error("enqueue was accepted");
} catch (error) {
  check(/not supported/.test(String((error as Error).message)), `enqueue error: ${(error as Error).message}`);
}

// values shared with kvctl: the test wrote these before running this script
const fromKvctl = await kv.get(["shared", "from-kvctl"]);
check(fromKvctl.value === "written by kvctl", `string from kvctl: ${fromKvctl.value}`);
const kvctlCounter = await kv.get<Deno.KvU64>(["shared", "counter"]);
check(kvctlCounter.value instanceof Deno.KvU64 && kvctlCounter.value.value === 42n, "kvctl sum is a KvU64");
await kv.set(["shared", "from-deno"], "written by deno");

kv.close();
console.log("deno scenario passed");
