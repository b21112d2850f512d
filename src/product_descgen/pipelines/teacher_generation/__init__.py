"""teacher_generation: draft + refine with the teacher, quality gate, distillation sets."""

from product_descgen.pipelines.teacher_generation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
