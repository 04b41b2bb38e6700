"""The re-created reference step: one update as diffusers' examples/dreambooth/
train_dreambooth.py (train_dreambooth_lora.py for LoRA) does it, written from the script and
not from the engine's code (bench_train's second row; see its docstring).
"""

from __future__ import annotations

from pathlib import Path

import torch

PROMPT = "a photo of sks shape"  # the benchmark's instance prompt (bench_train's config too)


class ReferenceStep:
    """One update as the reference scripts do it: no caching, everything encoded every step."""

    def __init__(self, cfg, device: torch.device, model_dir: Path, images: Path) -> None:
        from accelerate import Accelerator
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from diffusers.optimization import get_scheduler
        from transformers import CLIPTextModel, CLIPTokenizer

        tc = self.tc = cfg.train
        if tc.shuffle or tc.random_flip or tc.snr_gamma or tc.offset_noise:
            raise ValueError("the re-created step covers the benchmark's config only")
        self.device = device
        # The engine's Accelerator made the (process-wide) state; this one shares its settings.
        self.acc = Accelerator(mixed_precision=tc.mixed_precision, cpu=device.type != "cuda")
        wd = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(tc.mixed_precision, torch.float32)
        src = str(model_dir)
        self.tokenizer = CLIPTokenizer.from_pretrained(src, subfolder="tokenizer")
        self.text_encoder = CLIPTextModel.from_pretrained(src, subfolder="text_encoder")
        self.vae = AutoencoderKL.from_pretrained(src, subfolder="vae")
        self.unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet")
        self.scheduler = DDPMScheduler.from_pretrained(src, subfolder="scheduler")
        self.vae.requires_grad_(False)
        self.text_encoder.requires_grad_(False)
        self.vae.to(device, dtype=wd)
        self.text_encoder.to(device, dtype=wd)
        if tc.method == "lora":  # train_dreambooth_lora.py: frozen UNet in weight_dtype + adapters
            from peft import LoraConfig

            self.unet.requires_grad_(False)
            self.unet.to(device, dtype=wd)
            self.unet.add_adapter(
                LoraConfig(
                    r=tc.lora_rank,
                    lora_alpha=tc.lora_alpha,
                    init_lora_weights="gaussian",
                    target_modules=["to_k", "to_q", "to_v", "to_out.0"],
                )
            )
            # The script upcasts the adapters for fp16 only; here always, as the engine does,
            # so both train fp32 adapters (the same precision, the same loss).
            for p in self.unet.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        else:  # train_dreambooth.py: the UNet stays fp32; accelerate's autocast does the rest
            self.unet.to(device)
        if tc.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.params = [p for p in self.unet.parameters() if p.requires_grad]
        if tc.optimizer == "adamw8bit":
            import bitsandbytes as bnb

            opt_cls = bnb.optim.AdamW8bit
        else:
            opt_cls = torch.optim.AdamW  # no fused/foreach flag: torch's default, as the script
        optimizer = opt_cls(
            self.params, lr=tc.learning_rate, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8
        )
        lr_scheduler = get_scheduler(tc.lr_scheduler, optimizer, num_warmup_steps=0)
        self.unet, self.optimizer, self.lr_scheduler = self.acc.prepare(
            self.unet, optimizer, lr_scheduler
        )
        self.unet.train()
        exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
        self.paths = sorted(p for p in images.iterdir() if p.suffix.lower() in exts)
        self.weight_dtype = wd

    def batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
        """Micro-batch k as the script's Dataset + collate_fn make it, every step.

        Written from the script (torchvision's Resize/CenterCrop/ToTensor/Normalize semantics,
        its tokenize_prompt), not from the engine's data code; images in folder order (the
        benchmark's config turns shuffling off), random draws from the engine's step seed."""
        import numpy as np
        from PIL import Image, ImageOps

        from engine.recipe import step_seed  # the one shared piece: which random numbers

        tc, size = self.tc, self.tc.resolution
        dev_gen = torch.Generator(self.device).manual_seed(step_seed(tc.seed, k, 0))
        bs = tc.train_batch_size
        pixels = []
        for i in range(k * bs, (k + 1) * bs):
            img = ImageOps.exif_transpose(Image.open(self.paths[i % len(self.paths)]))
            img = img.convert("RGB")
            w, h = img.size  # Resize(size): the shorter side to size, bilinear
            nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
            img = img.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
            img = img.crop((left, top, left + size, top + size))  # CenterCrop
            arr = np.array(img, dtype=np.uint8)  # ToTensor: as torchvision reads a PIL image
            x = torch.from_numpy(arr).permute(2, 0, 1).float().div(255.0)
            pixels.append((x - 0.5) / 0.5)  # Normalize([0.5], [0.5])
        px = torch.stack(pixels).to(self.device, dtype=self.weight_dtype)
        ids = self.tokenizer(
            [PROMPT] * bs,
            truncation=True,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            return_tensors="pt",
        ).input_ids.to(self.device)
        return px, ids, dev_gen

    def compute_loss(self, k: int):
        """The script's loss, line for line, with explicit generators for its random draws."""
        from types import SimpleNamespace

        import torch.nn.functional as F

        pixels, ids, gen = self.batch(k)
        sched = self.scheduler
        latents = self.vae.encode(pixels).latent_dist.sample(generator=gen)
        latents = latents * self.vae.config.scaling_factor
        embeds = self.text_encoder(ids)[0]
        noise = torch.randn(
            latents.shape, generator=gen, device=latents.device, dtype=latents.dtype
        )
        bsz = latents.shape[0]
        n_t = sched.config.num_train_timesteps
        t = torch.randint(0, n_t, (bsz,), generator=gen, device=latents.device).long()
        noisy = sched.add_noise(latents, noise, t)
        pred = self.unet(noisy, t, embeds, return_dict=False)[0]  # prepared: under autocast
        if sched.config.prediction_type == "epsilon":
            target = noise
        else:
            target = sched.get_velocity(latents, noise, t)
        loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
        return SimpleNamespace(total=loss)

    def train_step(self, step: int) -> float:
        loss = self.compute_loss(step - 1).total
        self.acc.backward(loss)
        if self.tc.max_grad_norm:
            self.acc.clip_grad_norm_(self.params, self.tc.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=False)
        return loss.detach().item()

    def release(self) -> None:
        self.acc.free_memory()
