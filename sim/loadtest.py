#!/usr/bin/env python3
"""Load client for thinkgate-sim: N concurrent streamed requests.

Opens N raw connections at once, each sending one streamed chat request,
reads every byte until "data: [DONE]", and reports the sim's own counters
(peak open streams, tokens generated per second of wall time).  Not a
test: it prints numbers, it never fails on them.

  thinkgate-sim --speed 0 --tokens-per-step 16 --max-concurrency 4096 \
      --traces ../shared/traces &
  python3 sim/loadtest.py --url http://127.0.0.1:8000 --streams 2000 \
      --model R1 --prompt-file problem.txt --max-tokens 2000
"""
import argparse
import asyncio
import json
import time
import urllib.parse
import urllib.request


def stats(url):
    with urllib.request.urlopen(url + "/sim/stats", timeout=30) as r:
        return json.loads(r.read())


async def one(host, port, body, done):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n"
                  "Connection: close\r\n\r\n" % (host, len(body))).encode()
                 + body)
    await writer.drain()
    nbytes, tail = 0, b""
    while True:
        data = await reader.read(1 << 16)
        if not data:
            break
        nbytes += len(data)
        tail = (tail + data)[-64:]
        if b"data: [DONE]" in tail:
            break
    writer.close()
    done.append(nbytes)


async def poll(url, stop, samples):
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        s = await loop.run_in_executor(None, stats, url)
        samples.append((time.monotonic(), s))
        await asyncio.sleep(0.25)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--model", default="thinkgate-sim")
    ap.add_argument("--prompt", default="Sam has 12 apples and 3 bags of 5.")
    ap.add_argument("--prompt-file")
    ap.add_argument("--max-tokens", type=int, default=0)
    a = ap.parse_args()
    prompt = open(a.prompt_file).read() if a.prompt_file else a.prompt
    u = urllib.parse.urlparse(a.url)
    req = {"model": a.model, "stream": True,
           "messages": [{"role": "user", "content": prompt}]}
    if a.max_tokens:
        req["max_tokens"] = a.max_tokens
    body = json.dumps(req).encode()
    urllib.request.urlopen(urllib.request.Request(
        a.url + "/sim/reset", b"{}"), timeout=30).read()
    done, samples, stop = [], [], asyncio.Event()
    poller = asyncio.create_task(poll(a.url, stop, samples))
    t0 = time.monotonic()
    await asyncio.gather(*(one(u.hostname, u.port, body, done)
                           for _ in range(a.streams)))
    wall = time.monotonic() - t0
    stop.set()
    await poller
    end = stats(a.url)
    peak = max([s["open_streams"] for _, s in samples] + [0])
    # Throughput while every stream was open, from the sim's counters.
    full = [(t, s) for t, s in samples if s["open_streams"] >= 0.95 * a.streams]
    rate = 0.0
    if len(full) >= 2:
        (t1, s1), (t2, s2) = full[0], full[-1]
        rate = (s2["tokens_generated"] - s1["tokens_generated"]) / (t2 - t1)
    print(json.dumps({
        "streams": a.streams, "completed": len(done),
        "bytes": sum(done), "wall_s": round(wall, 2),
        "peak_open_streams": peak,
        "tokens_generated": end["tokens_generated"],
        "tokens_per_s_overall": round(end["tokens_generated"] / wall),
        "tokens_per_s_all_open": round(rate),
        "completed_streams": end["completed_streams"],
        "cancelled_streams": end["cancelled_streams"]}))


if __name__ == "__main__":
    asyncio.run(main())
