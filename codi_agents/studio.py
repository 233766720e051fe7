"""The graph for the LangGraph CLI and Studio (`langgraph dev`), built on import only by that tool.

Studio runs the uncompiled builder's graph with a context it cannot construct itself, so this
module gives it the compiled grounded-QA graph; run inputs are those of `SimulationInput`.
"""

from codi_agents.graph import build_graph
from codi_agents.tasks import get_task

graph = build_graph(get_task("grounded_qa"))
