"""Issue 9, item 15: text-encoder LoRA with gradient checkpointing trains the encoder's adapters,
on transformers 4.x (reentrant checkpoints by default) as on 5.x."""

from __future__ import annotations

from safetensors.torch import load_file

from tests.enginehelpers import of_type, train_in_process


def test_text_encoder_lora_with_gradient_checkpointing_gets_gradients(tiny_dir, tmp_path):
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "method": "lora",
            "train_text_encoder": True,
            "gradient_checkpointing": True,
            "max_train_steps": 2,
            "validation_steps": 100,
            "checkpointing_steps": 100,
        },
    )
    assert code == 0, of_type(events, "error")
    weights = load_file(run_dir / "final" / "pytorch_lora_weights.safetensors")
    # lora_B (diffusers: lora.up / lora_B) starts at zero: non-zero means it got gradients
    up = {
        k: v
        for k, v in weights.items()
        if k.startswith("text_encoder") and ("lora_B" in k or ".up." in k)
    }
    assert up, sorted(weights)[:5]
    assert all(v.abs().sum() > 0 for v in up.values()), [k for k, v in up.items() if not v.any()]
