"""Tasks and the registry: validation at creation, entry points loaded lazily, clear errors, the conversation hook."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import codi_agents.tasks as registry
from codi_agents import Document, Settings, simulate
from codi_agents.cli import main as codi_main
from codi_agents.errors import TaskError
from codi_agents.inputs._flows import Link
from codi_agents.inputs._personas import load_persona
from codi_agents.tasks import (
    ConversationCheck,
    ConversationDraft,
    PromptContext,
    Task,
    get_task,
    list_tasks,
    register_task,
)
from codi_agents.tasks.grounded_qa import GroundedJudgement, expectation, grounded_decision, grounded_user_check
from codi_agents.tasks.grounded_qa.prompts import PROMPTS
from codi_agents.testing import HashingEmbeddingFunction, ScriptedChatModel, approving_judgement, scripted_models

INVENTED = "The fee is exactly 975 dollars, payable only in Paris."


def make_task(name: str = "probe_task", **changes: Any) -> Task:
    fields: dict[str, Any] = {
        "name": name,
        "description": "A task made by a test.",
        "prompts": PROMPTS,
        "judge_schema": GroundedJudgement,
        "decide": grounded_decision,
        "check_user": grounded_user_check,
        "default_flow": "grounded_qa",
        "default_persona": "curious_student",
        "variables": {"expectation": expectation},
    }
    return Task(**(fields | changes))


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Tasks registered by a test are forgotten afterwards."""
    before = dict(registry._registry), dict(registry._origins)
    yield
    registry._registry.clear()
    registry._registry.update(before[0])
    registry._origins.clear()
    registry._origins.update(before[1])


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_registry: None) -> Path:
    """Installed entry points are codi's own plus those a test declares with `plugin()` for modules in tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    installed = list(entry_points(group=registry.ENTRY_POINT_GROUP))

    def with_test_plugins(group: str) -> list[EntryPoint]:
        declared = tmp_path / "entry_points.txt"
        lines = declared.read_text().splitlines() if declared.exists() else []
        extra = [EntryPoint(*(part.strip() for part in line.split("=", 1)), group=group) for line in lines]
        return [*installed, *extra]

    monkeypatch.setattr(registry, "entry_points", with_test_plugins)
    return tmp_path


def plugin(tmp_path: Path, module: str, source: str, entry_point: str) -> None:
    """Write `module` into tmp_path and declare `entry_point` (`name = module:attr`)."""
    tmp_path.joinpath(f"{module}.py").write_text(textwrap.dedent(source))
    declared = tmp_path / "entry_points.txt"
    declared.write_text((declared.read_text() if declared.exists() else "") + entry_point + "\n")
    sys.modules.pop(module, None)


PLUGIN_SOURCE = """
    import sys
    from codi_agents.tasks.grounded_qa import GroundedJudgement, expectation, grounded_decision, grounded_user_check
    from codi_agents.tasks import Task
    from codi_agents.tasks.grounded_qa.prompts import PROMPTS

    IMPORTED = True
    task = Task(name="{name}", description="plug-in", prompts=PROMPTS, judge_schema=GroundedJudgement,
                decide=grounded_decision, check_user=grounded_user_check, default_flow="grounded_qa",
                variables={{"expectation": expectation}})

    def build():
        return task
"""

TYPO_SOURCE = PLUGIN_SOURCE.format(name="broken").replace(
    "prompts=PROMPTS", "prompts=__import__('dataclasses').replace(PROMPTS, assistant_system='{pasages}')"
)
"""A plug-in whose assistant prompt has a typo: it fails when imported."""


# --- creation-time checks -------------------------------------------------------------------------------------


def test_placeholder_typo_fails_at_creation_naming_template_placeholder_and_allowed_names() -> None:
    prompts = replace(PROMPTS, assistant_system=PROMPTS.assistant_system.replace("{passages}", "{passages}{pasages}"))
    with pytest.raises(TaskError) as caught:
        make_task(prompts=prompts)
    message = str(caught.value)
    assert "prompt assistant_system" in message
    assert "{pasages}" in message
    assert "Allowed: document_title, expectation, guidance, passages, task_description" in message
    assert "declare others in `variables`" in message


def test_declared_variables_are_allowed_and_may_override_core_placeholders() -> None:
    prompts = replace(PROMPTS, critic_system=PROMPTS.critic_system + " Reading level: {reading_level}.")
    task = make_task(prompts=prompts, variables={"reading_level": lambda c: "easy", "expectation": lambda c: "x"})
    assert set(task.variables) == {"reading_level", "expectation"}


def test_the_export_prompt_may_not_use_task_variables_which_do_not_exist_at_export() -> None:
    prompts = replace(PROMPTS, training_system=PROMPTS.training_system + " Level: {reading_level}.")
    with pytest.raises(
        TaskError, match=r"prompt training_system: unknown placeholder\(s\) \{reading_level\}.*at export"
    ):
        make_task(prompts=prompts, variables={"reading_level": lambda c: "easy", "expectation": expectation})


def test_a_prompt_missing_what_it_cannot_work_without_is_refused() -> None:
    prompts = replace(PROMPTS, assistant_system="Answer from the document {document_title}.")
    with pytest.raises(TaskError, match=r"prompt assistant_system: missing placeholder\(s\) \{passages\}"):
        make_task(prompts=prompts)
    prompts = replace(PROMPTS, critic_turn="Passages: {passages}\nUser: {question}")
    with pytest.raises(TaskError, match=r"prompt critic_turn: missing placeholder\(s\) \{answer\}"):
        make_task(prompts=prompts)


def test_malformed_templates_and_bad_names_are_refused() -> None:
    with pytest.raises(TaskError, match="not a valid template"):
        make_task(prompts=replace(PROMPTS, user_turn="Your next message: {instruction"))
    with pytest.raises(TaskError, match="Task name 'Bad Name' is invalid"):
        make_task(name="Bad Name")


def test_judge_schema_must_put_reasons_first() -> None:
    class VerdictFirst(BaseModel):
        accepted: bool
        reasons: str

    with pytest.raises(TaskError, match=r"first field must be `reasons` \(got 'accepted'\)"):
        make_task(judge_schema=VerdictFirst)
    with pytest.raises(TaskError, match="judge_schema must be a pydantic model class"):
        make_task(judge_schema=dict)


def test_rules_must_be_functions() -> None:
    with pytest.raises(TaskError, match="decide must be a function"):
        make_task(decide="grounded_decision")
    with pytest.raises(TaskError, match="accept_conversation must be a function"):
        make_task(accept_conversation=True)
    with pytest.raises(TaskError, match="variable 'level' must be a function"):
        make_task(variables={"level": "easy"})


# --- the registry ---------------------------------------------------------------------------------------------


def test_built_in_tasks_are_declared_as_entry_points_like_third_party_ones() -> None:
    declared = {ep.name: ep for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert declared["grounded_qa"].value == "codi_agents.tasks.grounded_qa:task"
    assert declared["support"].value == "codi_agents.tasks.support:task"
    assert declared["grounded_qa"].dist is not None and declared["grounded_qa"].dist.name == "codi-agents"
    assert {"grounded_qa", "support"} <= set(list_tasks())


def test_built_in_tasks_are_imported_only_when_asked_for() -> None:
    script = textwrap.dedent(
        """
        import sys
        import codi_agents
        from codi_agents.tasks import get_task
        loaded = lambda: sorted(m for m in sys.modules if m.startswith("codi_agents.tasks."))
        print(loaded())
        get_task("grounded_qa")
        print(loaded())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    before, after = result.stdout.strip().splitlines()
    assert before == "['codi_agents.tasks._base']"
    assert "codi_agents.tasks.grounded_qa" in after
    assert "codi_agents.tasks.support" not in after


def test_an_entry_point_is_not_imported_until_its_task_is_asked_for(fake_plugins: Path) -> None:
    plugin(
        fake_plugins,
        "lazy_probe_plugin",
        PLUGIN_SOURCE.format(name="lazy_probe"),
        "lazy_probe = lazy_probe_plugin:task",
    )
    get_task("grounded_qa")
    simulate("The office opens at nine.", models=scripted_models(), embedding_function=HashingEmbeddingFunction())
    assert "lazy_probe_plugin" not in sys.modules
    task = get_task("lazy_probe")
    assert "lazy_probe_plugin" in sys.modules
    assert task.name == "lazy_probe" and get_task("lazy_probe") is task


def test_an_entry_point_may_name_a_function_returning_the_task(fake_plugins: Path) -> None:
    plugin(fake_plugins, "factory_plugin", PLUGIN_SOURCE.format(name="built"), "built = factory_plugin:build")
    assert get_task("built").description == "plug-in"
    assert "built" in list_tasks()


@pytest.mark.parametrize(
    ("source", "entry_point", "message"),
    [
        ("raise ImportError('No module named torch_extra')", "broken = broken_plugin:task",
         r"'broken' from \(entry point broken = broken_plugin:task\) failed to import: ImportError: No module named torch_extra"),
        ("task = 42", "broken = broken_plugin:task", r"gave a int, not a codi_agents.Task"),
        (PLUGIN_SOURCE.format(name="other_name"), "broken = broken_plugin:task",
         r"registered as 'broken' but its Task is named 'other_name'"),
        ("def task():\n    raise RuntimeError('no GPU')", "broken = broken_plugin:task", r"failed to build its task: RuntimeError: no GPU"),
        (TYPO_SOURCE, "broken = broken_plugin:task", r"is invalid: .*assistant_system: unknown placeholder\(s\) \{pasages\}"),
    ],
)  # fmt: skip
def test_a_broken_plug_in_is_a_clear_error_naming_it(
    fake_plugins: Path, capsys: pytest.CaptureFixture[str], source: str, entry_point: str, message: str
) -> None:
    plugin(fake_plugins, "broken_plugin", source, entry_point)
    with pytest.raises(TaskError, match=message):
        get_task("broken")
    assert get_task("grounded_qa").name == "grounded_qa", "one broken plug-in must not break the others"
    with pytest.raises(TaskError, match="broken"):
        list_tasks()
    errors: dict[str, TaskError] = {}
    assert "grounded_qa" in list_tasks(errors) and set(errors) == {"broken"}
    with pytest.raises(SystemExit) as exit_info:
        codi_main(["tasks"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert "grounded_qa" in out and "support" in out and "frustrated_customer" in out
    assert "broken" in out and "fails to load" in out
    assert "1 task plug-in(s) failed to load: broken" in err


def test_duplicate_names_are_refused(clean_registry: None) -> None:
    mine = register_task(make_task("dup_probe"))
    assert register_task(mine) is mine, "registering the same task again is harmless"
    with pytest.raises(TaskError, match=r"A task named 'dup_probe' is already registered \(from code\)"):
        register_task(make_task("dup_probe", description="another"))
    get_task("grounded_qa")
    with pytest.raises(TaskError, match=r"'grounded_qa' is already registered \(from package codi-agents"):
        register_task(make_task("grounded_qa"))


def test_a_name_an_installed_package_declares_is_refused_before_it_is_loaded(clean_registry: None) -> None:
    registry.unregister_task("support")
    with pytest.raises(TaskError, match=r"'support' is already installed by package codi-agents"):
        register_task(make_task("support"))
    assert get_task("support").description.startswith("A customer")


def test_two_packages_declaring_one_task_name_is_an_error_naming_both(fake_plugins: Path) -> None:
    plugin(fake_plugins, "twin_a", PLUGIN_SOURCE.format(name="twin"), "twin = twin_a:task")
    plugin(fake_plugins, "twin_b", PLUGIN_SOURCE.format(name="twin"), "twin = twin_b:task")
    with pytest.raises(TaskError, match=r"Two installed packages declare the task 'twin'.*twin_a:task.*twin_b:task"):
        get_task("twin")


def test_unknown_task_lists_the_installed_ones() -> None:
    with pytest.raises(TaskError, match=r"Unknown task 'poetry'. Installed tasks: .*grounded_qa.*support"):
        get_task("poetry")


# --- the conversation-level hook ------------------------------------------------------------------------------


def test_a_task_without_a_conversation_rule_keeps_the_default_acceptance(document: Document) -> None:
    conversation = simulate(
        document, task=make_task(), models=scripted_models(), embedding_function=HashingEmbeddingFunction(), seed=3
    )
    assert conversation.accepted and conversation.rejection is None


def test_the_conversation_rule_sees_the_finished_conversation_and_can_reject_it(document: Document) -> None:
    seen: list[ConversationDraft] = []

    def too_short(draft: ConversationDraft) -> ConversationCheck:
        seen.append(draft)
        return ConversationCheck(accepted=False, reason="fewer than 20 exchanges", rejection="low_score")

    conversation = simulate(
        document,
        task=make_task(accept_conversation=too_short),
        models=scripted_models(),
        embedding_function=HashingEmbeddingFunction(),
        seed=3,
    )
    assert not conversation.accepted
    assert (conversation.rejection, conversation.rejection_reason) == ("low_score", "fewer than 20 exchanges")
    assert len(conversation.turns) == 2 * len(conversation.path), "the turns are kept for auditing"
    (draft,) = seen
    assert draft.links == conversation.path and not draft.truncated
    assert draft.document.id == document.id and draft.persona.name == "curious_student"
    assert set(draft.passages) == set(conversation.passages)


def test_the_conversation_rule_also_guards_an_accepted_prefix(document: Document) -> None:
    models = scripted_models()
    honest = models["assistant"].script
    calls = {"n": 0}

    def fails_from_the_sixth_reply(messages: list[Any]) -> Any:
        calls["n"] += 1
        return INVENTED if calls["n"] >= 6 else honest(messages)  # type: ignore[operator]

    def judge(messages: list[Any]) -> dict[str, Any]:
        if "Paris" in str(messages[-1].content):
            return {**approving_judgement(messages), "grounded": False, "faithful": False, "score": 0.0}
        return approving_judgement(messages)

    models["assistant"] = ScriptedChatModel(script=fails_from_the_sixth_reply, model_name="tiring")
    models["critic"] = ScriptedChatModel(script=judge, model_name="judge")
    truncated: list[bool] = []

    def needs_six(draft: ConversationDraft) -> ConversationCheck:
        truncated.append(draft.truncated)
        exchanges = sum(turn.role == "assistant" for turn in draft.turns)
        return ConversationCheck(accepted=exchanges >= 6, reason=f"only {exchanges} exchanges")

    settings = Settings(seed=11, acceptance="accepted_prefix", flow="deep_dive", max_assistant_retries=0)
    conversation = simulate(
        document,
        task=make_task(accept_conversation=needs_six),
        models=models,
        embedding_function=HashingEmbeddingFunction(),
        settings=settings,
    )
    assert truncated == [True], "the rule judged the prefix the accepted-prefix policy would keep"
    assert not conversation.accepted
    assert conversation.rejection in {"not_grounded", "unfaithful"}, "the turn that failed names the rejection"
    assert "the accepted prefix was not kept: only 5 exchanges" in (conversation.rejection_reason or "")


# --- a different turn loop ----------------------------------------------------------------------------------


def test_a_task_can_bring_its_own_turn_loop_with_an_extra_node(document: Document) -> None:
    """`graph_builder` returns an uncompiled graph over codi's state and context: here the standard loop with a
    step between retrieval and the answer (where a tool call or a filter would go)."""
    from langgraph.graph import StateGraph
    from langgraph.runtime import Runtime

    from codi_agents.simulation._context import SimulationContext
    from codi_agents.simulation._graph import on_loop, standard_graph
    from codi_agents.simulation._state import SimulationState

    steps: list[tuple[int, list[str]]] = []

    def inspect_passages(state: SimulationState, runtime: Runtime[SimulationContext]) -> dict[str, Any]:
        assert runtime.context is not None  # the run context reaches a task's own nodes
        steps.append((state["step"], [passage.id for passage in state["retrieved"]]))
        return {}

    def with_inspection(task: Task) -> StateGraph[Any, Any, Any, Any]:
        graph = standard_graph(task)  # the default loop, with one edge rerouted through a new node
        graph.edges.remove(("retrieve", "assistant"))
        graph.add_node("inspect", on_loop(inspect_passages))
        graph.add_edge("retrieve", "inspect")
        graph.add_edge("inspect", "assistant")
        return graph

    conversation = simulate(
        document,
        task=make_task("inspected_qa", graph_builder=with_inspection),
        models=scripted_models(),
        embedding_function=HashingEmbeddingFunction(),
        seed=3,
    )
    assert conversation.accepted and conversation.task == "inspected_qa"
    assert [step for step, _ in steps] == list(range(len(conversation.path)))  # once per exchange, in order
    answers = [turn for turn in conversation.turns if turn.role == "assistant"]
    assert [ids for _, ids in steps] == [turn.passage_ids for turn in answers]


def test_a_task_declares_its_own_defaults_and_the_grounded_task_declares_its_own() -> None:
    grounded = get_task("grounded_qa")
    assert (grounded.default_flow, grounded.first_persona) == ("grounded_qa", "curious_student")
    assert get_task("support").first_persona == "frustrated_customer"  # the first of its default personas
    with pytest.raises(TaskError, match=r"'probe_task' names no default flow: set `default_flow`"):
        make_task(default_flow="")
    with pytest.raises(TaskError, match=r"'probe_task' declares no default persona: name one"):
        _ = make_task(default_persona="").first_persona


def test_expectations_belong_to_the_task_not_to_the_core() -> None:
    """The grounded prompts' `{expectation}` is the grounded task's variable: a task that reuses the
    prompts without declaring it is refused, and the grounded task's text depends on the link."""
    with pytest.raises(TaskError, match=r"prompt critic_turn: unknown placeholder\(s\) \{expectation\}"):
        make_task(variables={})
    grounded = get_task("grounded_qa")
    assert set(grounded.variables) == {"expectation"}
    texts = {
        kind: expectation(
            PromptContext(
                task=grounded,
                document=Document(id="d", text="x"),
                persona=load_persona("curious_student"),
                link_name=kind,
                link=Link(kind=kind, instruction="Ask."),
                history=[],
                turn_number=0,
            )
        )
        for kind in ("answerable", "unanswerable", "closing")
    }
    assert "does not guess" in texts["unanswerable"] and "brief" in texts["closing"]
    assert len(set(texts.values())) == 3
