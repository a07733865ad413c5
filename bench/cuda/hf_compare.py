"""Our CUDA backend's logits against Hugging Face transformers on the same GPU, same checkpoint.

Writes 8 random prompts (16..2048 tokens), runs `tandem-cuda-lab logits` on them, then runs the
checkpoint in transformers (same dtype, once per --refs setting; for bf16 also upcast to float32 as
a yardstick) and compares per position: cosine of the logit vectors (pass: every position >= 0.999) and top-1
agreement at positions where the reference's top-2 margin exceeds 0.05 (pass: >= 99 %).
--variants runs our side once per TANDEM_ROPE_ROUNDING value (the first one decides the exit code).

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
    cos = torch.nn.functional.cosine_similarity(ours.double(), ref.double(), dim=-1)  # on the GPU
    top2 = ref.topk(2, dim=-1).values
    decisive = (top2[:, 0] - top2[:, 1]) > 0.05
    agree = (ours.argmax(-1) == ref.argmax(-1)) & decisive
    return {"minCos": cos.min().item(), "meanCos": cos.mean().item(), "maxAbsDiff": (ours - ref).abs().max().item(),
            "top1Agree": int(agree.sum()), "top1Total": int(decisive.sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--lab", required=True)
    parser.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    parser.add_argument("--variants", default="auto")
    parser.add_argument("--work", default="/tmp/hf_compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refs", default="bf16,bf16-f32-reduce",
                        help="transformers runs to compare with, the first decides the exit code")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.model, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    prompts_path = os.path.join(args.work, "prompts.bin")
    prompts = write_prompts(prompts_path, vocab, args.seed)
    variants = args.variants.split(",")
    ours_all = {}
    for variant in variants:
        path = os.path.join(args.work, f"logits-{variant}.bin")
        started = time.time()
        env = dict(os.environ, TANDEM_ROPE_ROUNDING=variant)
        subprocess.run([args.lab, "logits", args.model, prompts_path, path, args.dtype], check=True, env=env)
        print(f"ours ({variant}): {time.time() - started:.1f} s", flush=True)
        ours_all[variant] = np.memmap(path, dtype=np.float32, mode="r")

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).cuda().eval()
    inv = model.model.rotary_emb.inv_freq
    inv32 = inv.float()
    print(json.dumps({"torch": torch.__version__, "hfInvFreqDtype": str(inv.dtype), "hfInvFreqIsBf16Rounded":
                      bool(torch.equal(inv32, inv32.to(torch.bfloat16).float())), "hfInvFreqHead": inv32[:4].tolist()}),
          flush=True)
    matmul = torch.backends.cuda.matmul
    default_reduction = matmul.allow_bf16_reduced_precision_reduction
    refs = {}  # reference name -> per-prompt logits (float32, on the GPU)
    with torch.no_grad():
        for name in args.refs.split(","):
            # "bf16": torch's defaults (split-K partial sums may be added in bf16);
            # "bf16-f32-reduce": allow_bf16_reduced_precision_reduction off (float32 partial sums).
            matmul.allow_bf16_reduced_precision_reduction = default_reduction if name == "bf16" else False
            refs[name] = [model(torch.tensor([p], device="cuda")).logits[0].float() for p in prompts]
        matmul.allow_bf16_reduced_precision_reduction = default_reduction
        if args.dtype == "bf16":
            model = model.float()
            refs["f32"] = [model(torch.tensor([p], device="cuda")).logits[0].float() for p in prompts]
    del model
    names = list(refs)
    gate_ref = names[0]
    print(json.dumps({"references": names, "defaultAllowBf16ReducedPrecisionReduction": default_reduction,
                      "gateReference": gate_ref}), flush=True)
    summary = {}
    for variant in variants:
        offset, totals, pair_totals = 0, {name: [] for name in names}, {}
        for i, p in enumerate(prompts):
            n = len(p)
            ours = torch.from_numpy(np.array(ours_all[variant][offset : offset + n * vocab])).view(n, vocab).cuda()
            offset += n * vocab
            r = {"variant": variant, "tokens": n}
            for name in names:
                r[f"oursVs:{name}"] = compare(ours, refs[name][i])
                totals[name].append(r[f"oursVs:{name}"])
            for a in names:
                for b in names:
                    if a < b:
                        r[f"{a}Vs:{b}"] = compare(refs[a][i], refs[b][i])
                        pair_totals.setdefault(f"{a}Vs:{b}", []).append(r[f"{a}Vs:{b}"])
            print(json.dumps(r), flush=True)
        # The same gate between transformers' own runs: whether the checkpoint can tell a right
        # bf16 implementation from a wrong one at all.
        for pair, rows in pair_totals.items():
            min_cos = min(x["minCos"] for x in rows)
            agree, total = sum(x["top1Agree"] for x in rows), sum(x["top1Total"] for x in rows)
            print(json.dumps({"check": "hf_self_compare", "pair": pair, "minCos": min_cos, "top1Agree": agree,
                              "top1Total": total, "top1Rate": agree / max(total, 1),
                              "pass": min_cos >= 0.999 and (total == 0 or agree / total >= 0.99)}), flush=True)
        for name in names:
            rows = totals[name]
            min_cos = min(x["minCos"] for x in rows)
            agree = sum(x["top1Agree"] for x in rows)
            total = sum(x["top1Total"] for x in rows)
            passed = min_cos >= 0.999 and (total == 0 or agree / total >= 0.99)
            summary[(variant, name)] = passed
            print(json.dumps({"check": "hf_compare", "model": args.model, "dtype": args.dtype, "variant": variant,
                              "reference": name, "prompts": LENGTHS, "minCos": min_cos, "top1Agree": agree,
                              "top1Total": total, "top1Rate": agree / max(total, 1), "pass": passed}), flush=True)
    raise SystemExit(0 if summary[(variants[0], gate_ref)] else 1)


if __name__ == "__main__":
    main()
