"""Benchmark: `codi run --workers 2` against one `codi run` process, whole processes, one slow fake server.

    python bench/ray_scaleout.py                       # K = 128, 256 conversations, median of 3
    python bench/ray_scaleout.py --repeat 1 --n 128    # quicker
    python bench/ray_scaleout.py --baseline none       # without the plain-asyncio baseline
    python bench/ray_scaleout.py --embeddings-on-server  # `[embedding]` on the fake server, not MiniLM
    python bench/ray_scaleout.py --cache warm          # both sides over one index cache filled beforehand

The fake OpenAI-compatible server (`codi_agents.testing.FakeOpenAIServer`, its own process) answers every
request after `--latency` seconds (200 ms). Over the same documents (the first `--documents` of
documents_doc2dial_273.jsonl, from ../shared/data beside the repository) and the same number of
conversations, each a fresh `--out`, K conversations in flight in all:

(a) `codi run -k K` (one process, the default path);
(b) `codi run -k K --workers 2` (a local Ray cluster of two worker processes; the driver plans and writes);
(c) the plain-asyncio client `bench/plain_client.py` (`--baseline`; the default-path benchmark's
    baseline), when that file exists.

Requests are counted by the server (`answered`), over the whole process's wall time (Ray's start, the
Chroma server and the indexing included). By default each run gets an empty `--index` folder, so both sides
embed the corpus; with `--cache warm` both run over one index cache that an unmeasured one-process run filled
first (passages and the critic's passage sentences), so neither embeds anything.
Efficiency = requests / (wall x K / latency) (1.0: a request always at the server for each of the K
conversations). Peak RSS is sampled over the whole process tree
(Ray's GCS, raylet and workers, and the Chroma server, are children of the run). The machine's load
(shared cores) moves every number: compare ratios from one invocation.

Measured (2026-12-02, quiet 2-core VM, load average 0.1 at the start, defaults: K = 128, 256 conversations
over 256 documents, median of 3): one process 28.6 requests/s (efficiency 0.045, 164 s, tree peak 1.3 GB),
`--workers 2` 26.4 requests/s (0.041, 177 s, tree peak 3.0 GB), i.e. 0.93x; the plain-asyncio client 398
requests/s (0.62). One process already keeps 1.8 of the 2 cores busy, so workers cannot add capacity here.
With `--embeddings-on-server` (same defaults, median of 3): one process 68.3 requests/s (0.107, 68 s, 0.8 GB),
`--workers 2` 60.1 (0.094, 78 s, 2.3 GB), i.e. 0.88x; plain asyncio 407 requests/s. Again with codi's own chat
client (2026-12-02, later, a busier host; load average 0.4 at the start, 7.4 at the end): one process 67.5
requests/s (69 s, 0.8 GB), `--workers 2` 54.6 (86 s, 2.2 GB), i.e. 0.81x; plain asyncio 321 requests/s.
With the int8 embedder (2026-12-03, load average 0.4 at the start, defaults, median of 3): one process 63.2
requests/s (0.099, 74 s, 454 MB), `--workers 2` 58.4 (0.091, 80 s, 1.8 GB), i.e. 0.92x; plain asyncio 266.5
requests/s (0.42). Later that day, documents indexed on their own threads (load average 1.2 at the start): one
process 54.2 requests/s (0.085, 86 s, 438 MB), `--workers 2` 50.8 (0.079, 92 s, 1.9 GB), i.e. 0.94x; plain asyncio
227.4 (0.355). With index writes behind the conversations (2026-12-03, load average 0.7 at the start): one process
52.3 requests/s (0.082, 89.7 s, 432 MB), `--workers 2` 54.3 (0.085, 86.3 s, 1.8 GB), i.e. 1.04x; plain asyncio 184.0
(0.288). With `--cache warm` (2026-12-03, load average 2.3 at the start, defaults, median of 3): one process
185.1 requests/s (0.289, 25.3 s, 414 MB), `--workers 2` 136.9 (0.214, 34.2 s, 1.8 GB), i.e. 0.74x; plain asyncio 245.2
(0.383). The workers are ready about 11 s after the start (Ray, then their imports and models); after that they serve
about 230 requests/s against about 205 for one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from default_path import Measured, measure  # one way to measure a whole process, in both benchmarks

ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (parent / "shared" / "data" for parent in ROOT.parents if (parent / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
DOCUMENTS = "documents_doc2dial_273.jsonl"


def corpus(count: int, folder: Path) -> Path:
    """The first `count` documents of doc2dial as `{id, title, text}` JSONL."""
    rows = [json.loads(line) for line in (DATA / DOCUMENTS).read_text().splitlines() if line.strip()][:count]
    path = folder / f"corpus-{count}.jsonl"
    path.write_text(
        "".join(json.dumps({"id": r["doc_id"], "title": r.get("title") or "", "text": r["text"]}) + "\n" for r in rows)
    )
    return path


def repetition(args: argparse.Namespace, documents: Path, folder: Path, env: dict[str, str]) -> dict[str, Measured]:
    """One run of each side against a fresh server."""
    from codi_agents.testing import FakeOpenAIServer

    results: dict[str, Measured] = {}
    with FakeOpenAIServer(latency=args.latency, process=True) as server:
        endpoint = ["--base-url", server.base_url, "--model", server.model, "--api-key", "fake"]
        if args.embeddings_on_server:  # `[embedding]` on the same fake server: MiniLM leaves these cores
            served = {"BASE_URL": server.base_url, "MODEL": "fake-embedding", "API_KEY": "fake"}
            env = {**env, **{f"CODI_EMBEDDING_{name}": value for name, value in served.items()}}
        warm = Path(tempfile.mkdtemp(prefix="codi-index-", dir=folder)) if args.cache == "warm" else None
        for name, extra in (("one process", []), ("--workers 2", ["--workers", "2"])):
            index = warm or Path(tempfile.mkdtemp(prefix="codi-index-", dir=folder))  # cold: both sides embed

            def codi(index: Path = index) -> list[str]:
                out = tempfile.mkdtemp(prefix="codi-run-", dir=folder)
                command = [sys.executable, "-m", "codi_agents", "run", str(documents), "--out", out, "--index"]
                return [*command, str(index), "--n", str(args.n), "-k", str(args.k), *endpoint]

            if warm is not None and name == "one process":  # fill the cache once, unmeasured, for both sides
                subprocess.run(codi(), env=env, check=True, capture_output=True)
            results[name] = measure([*codi(), *extra], server, env)
        if args.baseline is not None:
            plain = [sys.executable, str(args.baseline), str(documents), "--base-url", server.base_url]
            plain += ["--model", server.model, "--n", str(args.n), "--k", str(args.k)]
            results["plain asyncio"] = measure(plain, server, env)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=128, help="Conversations in flight in all.")
    parser.add_argument("--n", type=int, default=256, help="Conversations per run.")
    parser.add_argument("--documents", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--baseline",
        default=str(Path(__file__).resolve().parent / "plain_client.py"),
        help="The plain-asyncio client (bench/plain_client.py); `none` to leave it out.",
    )
    parser.add_argument(
        "--embeddings-on-server",
        action="store_true",
        help="Embed through the fake server's /v1/embeddings (`[embedding]`) instead of the packaged MiniLM.",
    )
    parser.add_argument(
        "--cache",
        choices=("cold", "warm"),
        default="cold",
        help="cold: each run gets an empty --index (embeds the corpus); warm: both sides run over one index cache "
        "filled by an unmeasured run first (passages and the critic's passage sentences embedded already).",
    )
    args = parser.parse_args()
    args.baseline = None if args.baseline == "none" or not Path(args.baseline).is_file() else Path(args.baseline)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"K={args.k}, {args.n} conversations over {args.documents} documents, latency {args.latency * 1000:.0f} ms, "
          f"{args.cache} index cache, median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="codi-scaleout-") as tmp:
        folder = Path(tmp)
        documents = corpus(args.documents, folder)
        runs = [repetition(args, documents, folder, env) for _ in range(args.repeat)]
    print("| run | requests/s | efficiency | wall s | requests | peak RSS MB (process tree) |")
    print("|---|---|---|---|---|---|")
    medians: dict[str, float] = {}
    for name in runs[0]:
        rate = medians[name] = statistics.median(run[name].rate for run in runs)
        efficiency = statistics.median(run[name].efficiency(args.k, args.latency) for run in runs)
        wall = statistics.median(run[name].wall for run in runs)
        requests = statistics.median(run[name].requests for run in runs)
        peak = max(run[name].peak_rss for run in runs) / 2**20
        print(f"| {name} | {rate:.1f} | {efficiency:.3f} | {wall:.1f} | {requests:.0f} | {peak:.0f} |")
    print(f"\n--workers 2 / one process: {medians['--workers 2'] / medians['one process']:.2f}x requests/s")
    if "plain asyncio" in medians:
        print(f"--workers 2 / plain asyncio: {medians['--workers 2'] / medians['plain asyncio']:.2f}x requests/s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
