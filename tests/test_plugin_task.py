"""The third-party task in examples/plugin_task: installed as a package, found through its entry point, simulated.

The package is installed into a folder of its own under tmp_path and used from a child Python with
that folder on its path, so the test environment itself never changes and nothing needs cleaning up.
Two ways to install, both offline:
- `pip install --no-build-isolation --target ...`: a real build with the package's backend
  (hatchling); runs when that backend is installed in the environment, else is skipped;
- what an installer leaves behind, written from the package's own pyproject.toml: the package
  folder and a `<name>-<version>.dist-info` with its METADATA and entry_points.txt, which is all
  `importlib.metadata` (and so codi) reads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin_task"
DOCUMENT = Path(__file__).resolve().parents[1] / "examples" / "docs" / "wikipedia_al_farahidi.txt"

CHILD = """
import json, sys
import codi_tutoring
from codi_agents import simulate
from codi_agents.tasks import list_tasks
from codi_agents.export import training_messages
from codi_agents.testing import HashingEmbeddingFunction, scripted_models

tasks = list_tasks()
models = scripted_models()
conversation = simulate(sys.argv[1], "eager_pupil", task="tutoring", seed=3, models=models,
                        embedding_function=HashingEmbeddingFunction())
print(json.dumps({
    "tasks": sorted(tasks),
    "module": codi_tutoring.__file__,
    "accepted": conversation.accepted,
    "rejection_reason": conversation.rejection_reason,
    "task": conversation.task,
    "flow": conversation.flow,
    "persona": conversation.persona.name,
    "user_prompt": models["user"].calls[0][0].content,
    "assistant_prompt": models["assistant"].calls[0][0].content,
    "critic_prompt": models["critic"].calls[0][0].content,
    "training_prompt": training_messages(conversation, codi_tutoring.task)[0]["content"],
}))
"""


def install_with_pip(target: Path) -> None:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("the plug-in's build backend (hatchling) is not installed here, so pip cannot build it offline")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(target), str(PLUGIN)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def install_files(target: Path) -> None:
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    shutil.copytree(PLUGIN / "src" / "codi_tutoring", target / "codi_tutoring")
    dist_info = target / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    lines = [
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in declared.items())
        for group, declared in project["entry-points"].items()
    ]
    (dist_info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("install", [install_with_pip, install_files], ids=["pip", "files"])
def test_installed_plugin_task_is_listed_and_simulates_with_its_own_prompts_flow_and_persona(
    tmp_path: Path, install: object
) -> None:
    target = tmp_path / "site"
    target.mkdir()
    install(target)  # type: ignore[operator]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}

    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(DOCUMENT)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"grounded_qa", "support", "tutoring"} <= set(seen["tasks"])
    assert Path(seen["module"]).is_relative_to(target), "the installed copy was used"
    assert seen["accepted"], seen["rejection_reason"]
    assert (seen["task"], seen["flow"], seen["persona"]) == ("tutoring", "tutoring", "eager_pupil")
    assert "You are playing a pupil" in seen["user_prompt"]
    assert "fourteen-year-old pupil" in seen["user_prompt"], "the persona shipped as package data"
    assert "You are a patient tutor" in seen["assistant_prompt"]
    assert "You check a tutor's replies" in seen["critic_prompt"]
    assert seen["training_prompt"].startswith("You are a patient tutor")

    listing = subprocess.run(
        [sys.executable, "-m", "codi_agents", "tasks"], capture_output=True, text=True, env=env, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    assert "tutoring" in listing.stdout and "eager_pupil" in listing.stdout


def test_the_plugin_is_not_visible_outside_its_install_folder() -> None:
    assert "tutoring" not in {ep.name for ep in entry_points(group="codi_agents.tasks")}
