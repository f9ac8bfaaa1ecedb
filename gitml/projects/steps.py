"""Steps: the order an entry point's `depends_on` chain runs in (dependencies first)."""

from __future__ import annotations

from gitml.exceptions import InvalidParameterValue
from gitml.projects.spec import Project

__all__ = ["plan_steps"]


def plan_steps(project: Project, target: str) -> list[str]:
    """Entry point names in the order they run to reach `target` (a topological order).

    Unknown steps were refused when the file was read; a cycle is refused here, naming it.
    A script entry point (`-e train.py`) is a single step.
    """
    if target not in project.entry_points:
        project.entry_point(target)  # a script, or the "no such entry point" error
        return [target]
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            raise InvalidParameterValue(f"depends_on cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in project.entry_points[name].depends_on:
            visit(dep, path + [name])
        state[name] = 2
        order.append(name)

    visit(target, [])
    return order
