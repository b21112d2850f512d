"""The two-step teacher (draft, then refine) that writes the distillation targets (no Kedro)."""
