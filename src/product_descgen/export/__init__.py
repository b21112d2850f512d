"""Exports of trained and configured models into the formats serving engines read: OpenVINO IR
(the CPU engine) and GGUF LoRA adapters (llama.cpp, Ollama)."""
