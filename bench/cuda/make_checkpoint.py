"""Writes a random-weight Llama checkpoint of a real model's shape with Hugging Face transformers
(save_pretrained: config.json + sharded safetensors + index), initialised on the GPU in bf16.

  python3 bench/cuda/make_checkpoint.py --shape 8b --out /tmp/llama-8b [--init neox]

--init hf (default): transformers' own init, every matrix N(0, 0.02).
--init neox: GPT-NeoX's scheme (Pythia was trained from it): "small init" N(0, sqrt(2 / (5 d)))
  for embeddings and input projections, "wang init" N(0, 2 / (L sqrt(d))) for the projections
  that write into the residual stream (o_proj, down_proj).
"""

import argparse
import math
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    # Llama-3.1-8B
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, tie_word_embeddings=False,
               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # Llama-3.2-1B
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, head_dim=64, tie_word_embeddings=True,
               rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # Small, head_dim 128 and Llama 3.1 RoPE: checks kernels at long positions in float32.
    "small128": dict(hidden_size=512, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=1, head_dim=128, tie_word_embeddings=False,
                     rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--init", choices=["hf", "neox"], default="hf")
    args = parser.parse_args()
    started = time.time()
    config = LlamaConfig(vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
                         rope_theta=500000.0, bos_token_id=128000, eos_token_id=128001,
                         **SHAPES[args.shape])
    torch.manual_seed(args.seed)
    torch.set_default_dtype(getattr(torch, args.dtype))
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    model.eval()
    if args.init == "neox":
        d, layers = config.hidden_size, config.num_hidden_layers
        small, wang = math.sqrt(2 / (5 * d)), 2 / (layers * math.sqrt(d))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2:
                    p.normal_(0.0, wang if name.endswith(("o_proj.weight", "down_proj.weight")) else small)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(args.out, max_shard_size="4GB")
    print(f"wrote {args.out}: {args.shape} shape, {params / 1e9:.2f} B params, {args.dtype}, init {args.init}, "
          f"{time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
