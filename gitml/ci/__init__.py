"""CI/CD: pipeline files for GitHub and GitLab, sticky PR/MR comments, metric gates, deployments.

The generated pipelines call gitml's CLI; the logic they run lives here and is tested here.
"""
