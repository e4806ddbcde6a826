"""Packaging: the `harness` package, with the step definitions (`steps/`) and the Locust workloads
(`load/`) shipped inside it as `harness.steps` and `harness.workloads`.

The checkout keeps them at the top level, where a reader of the project looks for them; an
installed `gameday` needs them inside its own package (a team's repository has no `steps/`).
Everything else about the package is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["harness", "harness.*"]) + ["harness.steps", "harness.workloads"],
    package_dir={"harness.steps": "steps", "harness.workloads": "load"},
)
