"""Drives an edgekv node through the Python `denokv` KV Connect client (HTTP/1.1).

Usage: python3 python_scenario.py URL [full|wrong-token]   (PYTHONPATH names the client)
Needs DENO_KV_ACCESS_TOKEN. Exits non-zero with a message on the first failed check.
The client has no watch support, so this scenario has no watch step.
"""

import asyncio
import sys
import time
from datetime import datetime, timedelta, timezone

from denokv import KvU64, open_kv
from denokv._kv_writes import Set


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


async def eventually(probe, what, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while not await probe():
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def value_of(kv, key, **options):
    _, entry = await kv.get(key, **options)
    return None if entry is None else entry.value


async def collect(iterator):
    return ",".join([entry.value async for entry in iterator])


async def wrong_token(url):
    try:
        async with await open_kv(url) as kv:
            await kv.get(("anything",))
    except Exception as error:  # the client raises its own error types
        check("invalid access token" in str(error), f"unexpected error: {error!r}")
        print("wrong token refused:", error)
        return
    raise AssertionError("a wrong token was accepted")


async def full(url):
    async with await open_kv(url) as kv:
        async for entry in kv.list(prefix=("python",)):
            await kv.delete(entry.key)

        await kv.set(("python", "user"), {"name": "Guido"})
        check((await value_of(kv, ("python", "user")))["name"] == "Guido", "strong get")
        from denokv import ConsistencyLevel

        eventual = await value_of(kv, ("python", "user"), consistency=ConsistencyLevel.EVENTUAL)
        check(eventual["name"] == "Guido", "eventual get")

        # String parts: this client packs an int key part differently in set and get.
        for i in range(5):
            await kv.set(("python", "items", f"i{i}"), f"v{i}")
        many = await kv.get(("python", "items", "i0"), ("python", "items", "i3"), ("python", "missing"))
        check([e.value if e else None for _, e in many] == ["v0", "v3", None], f"get many: {many}")

        check(await collect(kv.list(prefix=("python", "items"))) == "v0,v1,v2,v3,v4", "list prefix")
        got = await collect(kv.list(start=("python", "items", "i1"), end=("python", "items", "i3")))
        check(got == "v1,v2", f"list range: {got}")
        got = await collect(kv.list(prefix=("python", "items"), limit=2, reverse=True))
        check(got == "v4,v3", f"reverse: {got}")
        first = [entry async for entry in kv.list(prefix=("python", "items"), limit=2)]
        check([e.value for e in first] == ["v0", "v1"], "first page")
        got = await collect(kv.list(prefix=("python", "items"), cursor=first[-1].cursor))
        check(got == "v2,v3,v4", f"cursor: {got}")

        _, current = await kv.get(("python", "user"))
        failed = await kv.write(kv.atomic().check_key_not_set(("python", "user")).set(("python", "user"), 1))
        check(not failed.ok, "failing check")
        passed = await kv.write(
            kv.atomic().check_key_has_version(("python", "user"), current.versionstamp).set(("python", "user"), "new")
        )
        check(passed.ok, "passing check")

        await kv.sum(("python", "counter"), KvU64(4))
        await kv.sum(("python", "counter"), KvU64(6))
        counter = await value_of(kv, ("python", "counter"))
        check(isinstance(counter, KvU64) and int(counter) == 10, f"sum: {counter!r}")

        # Deno 2 sums on JS numbers and bigints, with bounds that clamp or abort.
        await kv.sum(("python", "float"), 2.5)
        await kv.sum(("python", "float"), 10.0, clamp_over=11.0)
        check(await value_of(kv, ("python", "float")) == 11.0, "clamped float sum")
        await kv.sum(("python", "bigint"), 5)
        try:
            await kv.sum(("python", "bigint"), 100, abort_over=50)
            raise AssertionError("a sum over its bound was applied")
        except AssertionError:
            raise
        except Exception as error:  # the server's 400 SUM_OUT_OF_RANGE
            print("bounded sum refused:", error)
        check(await value_of(kv, ("python", "bigint")) == 5, "refused sum wrote nothing")

        expire_at = datetime.now(timezone.utc) + timedelta(milliseconds=300)
        await kv.write(Set(("python", "session"), "temporary", expire_at=expire_at))
        check(await value_of(kv, ("python", "session")) == "temporary", "live before expiry")

        async def expired():
            return await value_of(kv, ("python", "session")) is None

        await eventually(expired, "expiry")

        await kv.delete(("python", "user"))
        check(await value_of(kv, ("python", "user")) is None, "delete")

        from_kvctl = await value_of(kv, ("shared", "from-kvctl"))
        check(from_kvctl == "written by kvctl", f"string from kvctl: {from_kvctl!r}")
        await kv.set(("shared", "from-python"), "written by python")
    print("python scenario passed")


if __name__ == "__main__":
    url = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "full"
    asyncio.run(wrong_token(url) if mode == "wrong-token" else full(url))
