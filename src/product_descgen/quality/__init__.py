"""Quality checks on generated descriptions (no Kedro import): the teacher gate, describe."""
