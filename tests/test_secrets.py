"""Secrets stay secret: a recognisable key, given every way codi takes one, appears in nothing codi writes or prints.

The key reaches codi from the environment, from a config file that refers to an environment
variable, and from `--api-key`; a server that quotes the key in its error messages is played too.
Then every file under the working folder and everything printed is searched for the key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codi_agents.testing import FakeOpenAIServer, Faults

KEY = "sk-codi-SECRET-4b1d9e7a2c5f8e3d6a90"
DATA = Path(__file__).parent / "data"


def codi(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODI_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "codi_agents", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=600,
    )


def files_with_key(folder: Path) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and KEY.encode() in path.read_bytes():
            hits.append(str(path.relative_to(folder)))
    return hits


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rows = [json.loads(line) for line in (DATA / "doc2dial_docs.jsonl").read_text().splitlines()[:2]]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({**row, "text": row["text"][:1500]}) + "\n" for row in rows))
    (tmp_path / "doc.md").write_text("# Plates\n\n" + rows[0]["text"][:1500])
    return path


def test_the_key_appears_in_no_file_and_no_output(tmp_path: Path, corpus: Path) -> None:
    outputs: list[str] = []
    with FakeOpenAIServer() as server:
        endpoint = {"OPENAI_BASE_URL": server.base_url, "CODI_MODEL": server.model}
        runs = [
            codi("simulate", "--doc", "doc.md", "--flow", "factoid_short", "--out", "conv.json", cwd=tmp_path,
                 env={**endpoint, "OPENAI_API_KEY": KEY}),
            codi("eval-critic", DATA / "critic_labelled.jsonl", "--json", "eval.json", "--base-url", server.base_url,
                 "--model", server.model, "--api-key", KEY, cwd=tmp_path),
        ]  # fmt: skip
        config = tmp_path / "run.toml"
        config.write_text(
            f'n = 3\nseed = 1\n[settings.endpoint]\nbase_url = "{server.base_url}"\nmodel = "{server.model}"\n'
            'api_key = "${MY_SECRET_KEY}"\n'
        )
        runs.append(
            codi("run", corpus, "--out", "run", "--config", config, "-k", "2", cwd=tmp_path, env={"MY_SECRET_KEY": KEY})
        )
        for fmt in ("openai", "sharegpt", "hf"):
            runs.append(codi("export", "run", "--format", fmt, "--out", f"export-{fmt}", cwd=tmp_path))
        runs.append(codi("report", "run", "--out", "report.html", "--json", "report.json", cwd=tmp_path))
        server.set_faults(Faults(reject_key=True))
        leaking = codi("simulate", "--doc", "doc.md", "--out", "rejected.json", "--api-key", KEY,
                       "--base-url", server.base_url, "--model", server.model, cwd=tmp_path)  # fmt: skip
        runs.append(leaking)
        leaking_run = codi("run", corpus, "--out", "run-401", "--n", "2", "--api-key", KEY, "--base-url",
                           server.base_url, "--model", server.model, cwd=tmp_path)  # fmt: skip
        runs.append(leaking_run)
    for result in runs[:-2]:
        assert result.returncode == 0, (result.args, result.stdout[-2000:], result.stderr[-2000:])
    for result in runs:
        outputs += [result.stdout, result.stderr]
    assert (tmp_path / "conv.json").exists() and (tmp_path / "run" / "manifest.json").exists()
    assert (tmp_path / "report.html").exists() and (tmp_path / "export-hf").is_dir()
    assert json.loads((tmp_path / "rejected.json").read_text())["rejection"] == "request_rejected"
    assert "Incorrect API key provided" in (tmp_path / "rejected.json").read_text()
    assert files_with_key(tmp_path) == []
    assert not [text for text in outputs if KEY in text]
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert server.base_url in manifest and server.model in manifest
