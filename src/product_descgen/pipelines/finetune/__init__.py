"""finetune: Ludwig QLoRA training of the student on the distillation set."""

from product_descgen.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
