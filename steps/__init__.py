"""pytest-bdd step definitions: parse the sentence, call the harness, nothing else."""
