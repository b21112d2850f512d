"""Evaluation of the student's descriptions against the teacher's (no Kedro import)."""
