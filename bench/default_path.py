"""Benchmark of the default path, side by side with the plainest client: whole processes, one fake server.

    python bench/default_path.py                       # K = 8, 32, 128, median of 3 (tens of minutes)
    python bench/default_path.py --k 32 --repeat 1     # one K, one repetition
    python bench/default_path.py --quick               # a smoke run (K = 8, few conversations)
    python bench/default_path.py --index-only          # MiniLM indexing throughput only
    python bench/default_path.py --cache cold          # codi with a fresh index cache only (default: both)

The fake OpenAI-compatible server (`codi_agents.testing.FakeOpenAIServer`) runs in its own process and
answers every request after `--latency` seconds (200 ms). Against it, as whole subprocesses over the same
documents and the same number of conversations:

(a) the baseline, `bench/plain_client.py`: plain asyncio + `openai.AsyncOpenAI`, K conversations in
    flight, per turn a user question, a grounded answer (passages picked by word overlap) and a
    structured critique (a function-calling request with a JSON schema, as codi's critic sends);
(b) `codi run` with its defaults (the packaged MiniLM embeddings, the default critic), a fresh `--out`, and
    `--index` naming the index cache: `cold`, a fresh empty cache per repetition (the corpus is embedded during
    the run, as on a first run), and `warm`, the same cache again right after (a second run over an indexed
    corpus embeds nothing: what every later run over that corpus costs). `--cache both` (the default) measures
    both in each repetition, the warm run reusing the cache the cold run just filled; `--cache warm` fills it
    with an unmeasured run first.

codi's modules are byte-compiled first (`compileall`), as `pip install` or a first import leaves them on a user's
machine: where PYTHONDONTWRITEBYTECODE is set (as on the machine these numbers come from), an editable checkout
would otherwise compile its sources again in every process (about 0.4 s of each start-up).

Requests are counted by the server (its `answered` counter), so both sides are measured alike.
Efficiency = requests served / (wall seconds x K / latency): 1.0 means every conversation always had
a request at the server. CPU ms/request is user+sys of the client's process tree (RUSAGE_CHILDREN);
peak RSS is sampled over that tree. codi's own account of its CPU (`summary.json`'s `cpu`) splits it into
start-up (before the conversations start), the ONNX model runs, and the rest, codi's own work per request.
The MiniLM indexing rate is measured on documents_doc2dial_273 (chunked as codi chunks). Data is read from
`--docs` (default ../shared/data beside the repository);
nothing is copied into the repository. Numbers depend on the machine's load: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = next(
    (parent / "shared" / "data" for parent in ROOT.parents if (parent / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
"""../shared/data beside the repository (or beside a folder above it, for a git worktree)."""
QUAC = "documents_quac_200.jsonl"
DOC2DIAL = "documents_doc2dial_273.jsonl"
LATENCY = 0.2
WORKLOADS: dict[int, tuple[int, int, str]] = {8: (16, 10, QUAC), 32: (64, 40, QUAC), 128: (256, 256, DOC2DIAL)}
"""K -> (conversations, documents, file): the issue's K = 32 and K = 128 workloads, and K = 8 in proportion."""
QUICK: dict[int, tuple[int, int, str]] = {8: (8, 4, QUAC)}


# -- measuring a subprocess ---------------------------------------------------------------------------------


@dataclass
class Measured:
    """One side of one repetition."""

    requests: int
    wall: float
    cpu: float
    peak_rss: int
    split: dict[str, Any] | None = None
    """codi's own account of its CPU (`summary.json`'s `cpu`): start-up, model runs, the whole process."""

    def own_cpu(self) -> float:
        """CPU seconds after start-up outside the model runs: codi's own work (the issue's "own CPU")."""
        assert self.split is not None
        split = self.split
        return float(split["process_seconds"] - split["at_start_seconds"] - sum(split["model_seconds"].values()))

    @property
    def rate(self) -> float:
        """Requests served per wall second."""
        return self.requests / self.wall

    def efficiency(self, k: int, latency: float) -> float:
        """Requests served over the ideal, K requests every `latency` seconds."""
        return self.requests / (self.wall * k / latency)


def sample_peak_rss(process: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    """Keep `peak[0]` at the highest RSS of `process` and its children until `stop` is set."""
    while not stop.is_set():
        total = 0
        with contextlib.suppress(psutil.Error):
            for member in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += member.memory_info().rss
        peak[0] = max(peak[0], total)
        stop.wait(0.05)


def measure(command: list[str], server: Any, env: dict[str, str]) -> Measured:
    """Run `command` to its end: what the server answered meanwhile, wall and CPU time, the tree's peak RSS."""
    before = server.stats().get("answered", 0)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=sample_peak_rss, args=(psutil.Process(child.pid), stop, peak), daemon=True)
    sampler.start()
    _, errors = child.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({child.returncode}):\n{errors[-3000:]}")
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return Measured(requests=server.stats().get("answered", 0) - before, wall=wall, cpu=cpu, peak_rss=peak[0])


def _corpus(docs: Path, name: str, count: int, folder: Path) -> Path:
    lines = [line for line in (docs / name).read_text().splitlines() if line.strip()][:count]
    path = folder / f"corpus-{count}.jsonl"
    rows = [json.loads(line) for line in lines]
    path.write_text(
        "".join(json.dumps({"id": r["doc_id"], "title": r.get("title") or "", "text": r["text"]}) + "\n" for r in rows)
    )
    return path


CACHES = {"cold": ("cold",), "warm": ("warm",), "both": ("cold", "warm")}
"""`--cache` -> the codi sides measured, in order: a cold run fills the cache a warm run then reuses."""


def _one_repetition(
    k: int, n: int, corpus: Path, folder: Path, latency: float, env: dict[str, str], cache: str
) -> dict[str, Measured]:
    from codi_agents.testing import FakeOpenAIServer

    index = Path(tempfile.mkdtemp(prefix="codi-index-", dir=folder))  # a fresh cache for this repetition

    def codi() -> Measured:
        out = Path(tempfile.mkdtemp(prefix="codi-run-", dir=folder))
        command = [sys.executable, "-m", "codi_agents", "run", str(corpus), "--out", str(out), "--n", str(n)]
        command += ["-k", str(k), "--base-url", server.base_url, "--model", server.model, "--api-key", "fake"]
        measured = measure([*command, "--index", str(index)], server, env)
        measured.split = json.loads((out / "summary.json").read_text())["cpu"]
        return measured

    with FakeOpenAIServer(latency=latency, process=True) as server:
        base = [sys.executable, str(Path(__file__).resolve().parent / "plain_client.py"), str(corpus)]
        base += ["--base-url", server.base_url, "--model", server.model, "--n", str(n), "--k", str(k)]
        measured = {"baseline": measure(base, server, env)}
        if cache == "warm":
            codi()  # fills the cache; not measured
        for side in CACHES[cache]:
            measured[f"codi {side}"] = codi()
        return measured


def indexing_rate(docs: Path, limit: int | None = None) -> tuple[int, float, float]:
    """Passages per second of the packaged MiniLM over documents_doc2dial_273, chunked as codi chunks.

    Twice: the model alone (all passages in one call), and through the passage index as a run
    indexes (a document per call on the run's indexing threads, gathered by the batcher, scanned by the
    injection detector, stored in Chroma).
    """
    from codi_agents.inputs._documents import Document
    from codi_agents.inputs._passages import chunk_document
    from codi_agents.retrieval._embeddings import MiniLMEmbeddingFunction
    from codi_agents.retrieval._index import PassageIndex
    from codi_agents.retrieval._indexing_threads import indexing_pool

    rows = [json.loads(line) for line in (docs / DOC2DIAL).read_text().splitlines() if line.strip()][:limit]
    documents = [Document(id=r["doc_id"], title=r.get("title") or "", text=r["text"]) for r in rows]
    chunked = [(document, chunk_document(document)) for document in documents]
    texts = [passage.text for _, passages in chunked for passage in passages]
    embed = MiniLMEmbeddingFunction()
    embed(["warm up"])
    started = time.perf_counter()
    embed(texts)
    model_rate = len(texts) / (time.perf_counter() - started)
    index = PassageIndex.open(embed)
    started = time.perf_counter()
    list(indexing_pool().map(lambda item: index.add(*item), chunked))
    index.flush()  # every passage in Chroma
    index_rate = len(texts) / (time.perf_counter() - started)
    index.close()
    return len(texts), model_rate, index_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, nargs="+", default=sorted(WORKLOADS), choices=sorted(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="A smoke run: K = 8, 8 conversations, once.")
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="Folder of the shared data files.")
    parser.add_argument("--latency", type=float, default=LATENCY)
    parser.add_argument("--index-only", action="store_true", help="Measure only the MiniLM indexing rate.")
    parser.add_argument(
        "--cache", choices=sorted(CACHES), default="both",
        help="codi's index cache: fresh per repetition (cold), already filled (warm), or both (default).",
    )  # fmt: skip
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "codi_agents"), quiet=1)  # as an install leaves them (see above)
    from codi_agents.retrieval._indexing_threads import INDEXING_THREADS

    if not args.index_only:
        _side_by_side(args)
    passages, model_rate, index_rate = indexing_rate(args.docs, limit=40 if args.quick else None)
    print(
        f"\nMiniLM indexing, {passages} passages of {DOC2DIAL}: {model_rate:.1f} passages/s (model alone), "
        f"{index_rate:.1f} passages/s (through the passage index, {INDEXING_THREADS} indexing threads); "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def _side_by_side(args: argparse.Namespace) -> None:
    workloads = QUICK if args.quick else {k: WORKLOADS[k] for k in args.k}
    repeat = 1 if args.quick else args.repeat
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    sides = ["baseline", *(f"codi {cache}" for cache in CACHES[args.cache])]
    print(
        f"fake server latency {args.latency * 1000:.0f} ms; median of {repeat}; load average {os.getloadavg()[0]:.1f}; "
        "codi cold: a fresh index cache (embeds the corpus), codi warm: the same cache again (embeds nothing)"
    )
    codi_sides = sides[1:]
    columns = ["K", "conversations / documents", "baseline eff."]
    columns += [f"{side} eff." for side in codi_sides] + [f"{side} / baseline" for side in codi_sides]
    columns += [f"{label} ({' / '.join(name.replace('baseline', 'base') for name in sides)})" for label in LABELS]
    columns += [f"{label} ({' / '.join(codi_sides)})" for label in CODI_LABELS]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns), flush=True)
    with tempfile.TemporaryDirectory(prefix="codi-bench-") as tmp:
        folder = Path(tmp)
        for k, (n, count, name) in workloads.items():
            corpus = _corpus(args.docs, name, count, folder)
            runs = [_one_repetition(k, n, corpus, folder, args.latency, env, args.cache) for _ in range(repeat)]
            _print_row(k, n, count, name, runs, args.latency, sides)


LABELS = ("requests", "CPU ms/req", "peak RSS MB", "wall s")
CODI_LABELS = ("codi's own CPU ms/req after start-up", "model CPU ms/req", "start-up CPU s")
"""From codi's `summary.json`: its CPU outside start-up and the model runs, the models' (embedder, detector,
faithfulness checker), and the process's CPU before the conversations started."""


def _print_row(
    k: int, n: int, count: int, name: str, runs: list[dict[str, Measured]], latency: float, sides: list[str]
) -> None:
    def median(side: str, value: Any) -> float:
        return statistics.median(value(run[side]) for run in runs)

    eff = {side: median(side, lambda m: m.efficiency(k, latency)) for side in sides}
    ratio = {
        side: statistics.median(
            run[side].efficiency(k, latency) / run["baseline"].efficiency(k, latency) for run in runs
        )
        for side in sides[1:]
    }
    values = {
        "requests": (lambda m: m.requests, "{:.0f}"),
        "CPU ms/req": (lambda m: 1000 * m.cpu / max(m.requests, 1), "{:.1f}"),
        "peak RSS MB": (lambda m: m.peak_rss / 1e6, "{:.0f}"),
        "wall s": (lambda m: m.wall, "{:.1f}"),
    }
    codi_values = {
        CODI_LABELS[0]: (lambda m: 1000 * m.own_cpu() / max(m.requests, 1), "{:.1f}"),
        CODI_LABELS[1]: (lambda m: 1000 * sum(m.split["model_seconds"].values()) / max(m.requests, 1), "{:.1f}"),
        CODI_LABELS[2]: (lambda m: m.split["at_start_seconds"], "{:.2f}"),
    }
    cells = [str(k), f"{n} / {count} ({name.split('_')[1]})", f"{eff['baseline']:.2f}"]
    cells += [f"{eff[side]:.2f}" for side in sides[1:]] + [f"**{ratio[side]:.2f}**" for side in sides[1:]]
    for label in LABELS:
        value, form = values[label]
        cells.append(" / ".join(form.format(median(side, value)) for side in sides))
    for label in CODI_LABELS:
        value, form = codi_values[label]
        cells.append(" / ".join(form.format(median(side, value)) for side in sides[1:]))
    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
