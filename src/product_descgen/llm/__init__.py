"""LLM access behind one interface: in-process OpenVINO GenAI or transformers, or any
OpenAI-compatible server.

No Kedro import. ``make_backend`` builds a backend from a connection config; every backend
turns a list of :class:`Request` into :class:`Result` objects, batch by batch.
"""

from product_descgen.llm.types import GenerationSettings, Request, Result

__all__ = ["GenerationSettings", "Request", "Result"]
