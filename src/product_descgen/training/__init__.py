"""Student fine-tuning with Ludwig (QLoRA): config building, compatibility fixes (no Kedro)."""
