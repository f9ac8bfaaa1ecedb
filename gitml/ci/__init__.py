"""CI: pipeline templates (GitHub, GitLab), PR/MR comments, metric gates, run diffs.

Sits above projects in the import table: it may import projects and everything below it;
deploy, serving, fluent and cli sit above it.
"""

__all__: list[str] = []
