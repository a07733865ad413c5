"""Our CUDA backend's logits against Hugging Face transformers on the same GPU, same checkpoint.

Writes 8 random prompts (16..2048 tokens), runs `tandem-cuda-lab logits` (bf16) on them, then
runs the checkpoint in transformers (bf16, then float32 as a yardstick) and compares per position:
cosine of the logit vectors (pass: every position >= 0.999) and top-1 agreement at positions
where the bf16 reference's top-2 margin exceeds 0.05 (pass: >= 99 %).

  python3 bench/cuda/hf_compare.py --model /tmp/llama-8b --lab build/tandem-cuda-lab
"""

import argparse
import json
import os
import struct
import subprocess
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM

LENGTHS = [16, 64, 128, 256, 512, 1024, 1536, 2048]


def write_prompts(path: str, vocab: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(0, vocab, size=n).tolist() for n in LENGTHS]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(prompts)))
        for p in prompts:
            f.write(struct.pack("<i", len(p)))
            f.write(np.asarray(p, dtype=np.int32).tobytes())
    return prompts


def compare(ours: torch.Tensor, ref: torch.Tensor) -> dict:
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=-1)
    top2 = ref.topk(2, dim=-1).values
    decisive = (top2[:, 0] - top2[:, 1]) > 0.05
    agree = (ours.argmax(-1) == ref.argmax(-1)) & decisive
    return {"minCos": cos.min().item(), "meanCos": cos.mean().item(), "top1Agree": int(agree.sum()),
            "top1Total": int(decisive.sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--lab", required=True)
    parser.add_argument("--work", default="/tmp/hf_compare")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.model, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    prompts_path = os.path.join(args.work, "prompts.bin")
    logits_path = os.path.join(args.work, "logits.bin")
    prompts = write_prompts(prompts_path, vocab, args.seed)
    started = time.time()
    subprocess.run([args.lab, "logits", args.model, prompts_path, logits_path, "bf16"], check=True)
    print(f"ours: {time.time() - started:.1f} s", flush=True)
    ours_all = np.memmap(logits_path, dtype=np.float32, mode="r")

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda().eval()
    results = {"bf16": [], "f32": []}
    refs_bf16 = []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p], device="cuda")
            refs_bf16.append(model(ids).logits[0].float().cpu())
        model = model.float()
        offset = 0
        for p, ref_bf16 in zip(prompts, refs_bf16):
            n = len(p)
            ours = torch.from_numpy(np.array(ours_all[offset : offset + n * vocab])).view(n, vocab)
            offset += n * vocab
            ref_f32 = model(torch.tensor([p], device="cuda")).logits[0].float().cpu()
            r = {"tokens": n, "oursVsHfBf16": compare(ours, ref_bf16), "oursVsHfF32": compare(ours, ref_f32),
                 "hfBf16VsHfF32": compare(ref_bf16, ref_f32)}
            print(json.dumps(r), flush=True)
            results["bf16"].append(r)
    rows = [r["oursVsHfBf16"] for r in results["bf16"]]
    min_cos = min(r["minCos"] for r in rows)
    agree = sum(r["top1Agree"] for r in rows)
    total = sum(r["top1Total"] for r in rows)
    passed = min_cos >= 0.999 and (total == 0 or agree / total >= 0.99)
    print(json.dumps({"check": "hf_compare", "model": args.model, "prompts": LENGTHS, "minCos": min_cos,
                      "top1Agree": agree, "top1Total": total, "top1Rate": agree / max(total, 1), "pass": passed}),
          flush=True)
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
