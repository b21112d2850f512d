"""Start-up checks of the keys Kedro does not validate: top-level parameter blocks and globals.

Kedro validates a ``params:<block>`` only when a node reads it, against the node's pydantic
type, and never sees ``globals.yml`` keys (they are only interpolated): a misspelt block
(``teacher_generaton``) or global (``data_rot``, ``models.teachr``) would be ignored without a
word and the run would use the defaults (the demo's data folder, 1,000 products, the wrong
model). Here a key that base does not declare fails the run before any node, naming the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

CLOSE = 0.75  # similarity over which an undeclared global is taken for a misspelt one


def declared_keys(conf_base: Path, pattern: str) -> set[str]:
    """Top-level keys of the base environment's files matching ``pattern``."""
    keys: set[str] = set()
    for file in sorted(conf_base.glob(pattern)):
        keys |= set(yaml.safe_load(file.read_text()) or {})
    return keys


def suggestion(key: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def config_problems(
    params: Mapping[str, Any],
    globals_: Mapping[str, Any],
    declared_params: set[str],
    declared_globals: set[str],
) -> list[str]:
    """What is wrong with the run's keys: a parameter block base does not declare (nothing
    reads it); a global close to a declared one but not it (your own globals, for your own
    interpolations, are fine); a ``models`` block that is not a valid
    :class:`~product_descgen.models.ModelsParams`."""
    from product_descgen.models import ModelsParams

    problems = [
        f"parameters: unknown block {key!r}{suggestion(key, declared_params)}: no node reads "
        f"it (blocks: {', '.join(sorted(declared_params))})"
        for key in params
        if key not in declared_params
    ]
    misspelt = {
        key: suggestion(key, declared_globals, CLOSE)
        for key in globals_
        if key not in declared_globals
    }
    problems += [f"globals: unknown key {key!r}{hint}" for key, hint in misspelt.items() if hint]
    if "models" in globals_:
        try:
            ModelsParams.model_validate(globals_["models"])
        except ValidationError as err:
            problems += [model_problem(e) for e in err.errors()]
    return problems


def model_problem(error: Any) -> str:
    """One ``models`` validation error, with the likely key for a misspelt one."""
    from product_descgen.models import ModelsParams, ModelSpec

    loc = [str(part) for part in error["loc"]]
    hint = ""
    if error["type"] == "extra_forbidden" and loc:
        fields = ModelsParams.model_fields if len(loc) == 1 else ModelSpec.model_fields
        hint = suggestion(loc[-1], fields)
    return f"globals: models.{'.'.join(loc)}: {error['msg']}{hint}"


def check_config(
    params: Mapping[str, Any], globals_: Mapping[str, Any], conf_base: Path, env: str
) -> None:
    """Fail with every problem :func:`config_problems` finds, against ``conf_base``'s keys."""
    problems = config_problems(
        params,
        globals_,
        declared_keys(conf_base, "**/parameters*.yml"),
        declared_keys(conf_base, "globals.yml"),
    )
    if problems:
        raise ValueError(
            f"configuration (environment {env!r}) has keys that nothing reads (which would leave "
            "the defaults in place) or an invalid models block: " + "; ".join(problems)
        )
