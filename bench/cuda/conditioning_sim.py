"""Why the HF-init 8B checkpoint cannot pass a bf16-vs-bf16 gate, on a CPU in minutes.

A 32-layer Llama (GQA, SwiGLU, RoPE; width 1024 so it runs on 2 cores) computed three ways in
torch: float32, bf16 with transformers' rounding points, and bf16 with flash-attention's extra
rounding of the softmax weights (a second, equally valid bf16 implementation). Printed: per
position logits cosine and top-1 agreement (margin > 0.05) between them, for several inits.

What sets the spread is the init's "temperature": the std of q, k and the MLP gate, i.e.
init_std * sqrt(hidden). HF's N(0, 0.02) at hidden 4096 gives 1.28; `std0.04` here gives the same
at hidden 1024. GPT-NeoX's init (`neox`) gives 0.63.

  python3 bench/cuda/conditioning_sim.py std0.02,std0.04,neox
"""

import math
import sys

import torch

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE, VOCAB, LAYERS, TOKENS = 1024, 8, 2, 128, 3584, 32000, 32, 192


def make_weights(init: str) -> dict:
    gen = torch.Generator().manual_seed(1)

    def normal(*shape: int, std: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).bfloat16().float()  # a bf16 checkpoint

    if init.startswith("std"):  # transformers' init with initializer_range = init_std
        std = out_std = float(init[3:])
    elif init == "neox":  # small init / wang init (make_checkpoint.py --init neox)
        std, out_std = math.sqrt(2 / (5 * HIDDEN)), 2 / (LAYERS * math.sqrt(HIDDEN))
    else:
        raise SystemExit(f"unknown init {init}")
    layers = [dict(q=normal(HEADS * HEAD_DIM, HIDDEN, std=std), k=normal(KV_HEADS * HEAD_DIM, HIDDEN, std=std),
                   v=normal(KV_HEADS * HEAD_DIM, HIDDEN, std=std), o=normal(HIDDEN, HEADS * HEAD_DIM, std=out_std),
                   gate=normal(INTERMEDIATE, HIDDEN, std=std), up=normal(INTERMEDIATE, HIDDEN, std=std),
                   down=normal(HIDDEN, INTERMEDIATE, std=out_std)) for _ in range(LAYERS)]
    return dict(embed=normal(VOCAB, HIDDEN, std=std), head=normal(VOCAB, HIDDEN, std=std), layers=layers)


def forward(w: dict, ids: torch.Tensor, mode: str) -> torch.Tensor:
    """mode: f32 | bf16 (transformers' rounding points) | bf16-p (plus softmax weights in bf16)."""
    rnd = (lambda x: x) if mode == "f32" else (lambda x: x.bfloat16().float())
    n = len(ids)
    inv_freq = 1.0 / (500000.0 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
    angles = torch.arange(n).float()[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], -1)
    cos, sin = rnd(angles.cos()), rnd(angles.sin())

    def rms_norm(x: torch.Tensor) -> torch.Tensor:
        return rnd(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))

    def rope(x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return rnd(rnd(x * cos) + rnd(rotated * sin))

    causal = torch.full((n, n), float("-inf")).triu(1)
    x = w["embed"][ids]
    for layer in w["layers"]:
        h = rms_norm(x)
        q = rope(rnd(h @ layer["q"].T).view(n, HEADS, HEAD_DIM).transpose(0, 1))
        k = rope(rnd(h @ layer["k"].T).view(n, KV_HEADS, HEAD_DIM).transpose(0, 1))
        v = rnd(h @ layer["v"].T).view(n, KV_HEADS, HEAD_DIM).transpose(0, 1)
        k, v = k.repeat_interleave(HEADS // KV_HEADS, 0), v.repeat_interleave(HEADS // KV_HEADS, 0)
        scores = q @ k.transpose(1, 2) / math.sqrt(HEAD_DIM) + causal
        if mode == "bf16-p":  # flash attention: exp in float32, rounded to bf16 for P @ V
            e = torch.exp(scores - scores.max(-1, keepdim=True).values)
            probs = rnd(e) / e.sum(-1, keepdim=True)
        else:
            probs = torch.softmax(scores, -1)
        attn = rnd(probs @ v).transpose(0, 1).reshape(n, -1)
        x = rnd(x + rnd(attn @ layer["o"].T))
        h = rms_norm(x)
        gate, up = rnd(h @ layer["gate"].T), rnd(h @ layer["up"].T)
        x = rnd(x + rnd(rnd(rnd(gate * torch.sigmoid(gate)) * up) @ layer["down"].T))
    return rnd(rms_norm(x) @ w["head"].T)


def compare(a: torch.Tensor, b: torch.Tensor) -> str:
    cos = torch.nn.functional.cosine_similarity(a.double(), b.double(), -1)
    top2 = b.topk(2, -1).values
    decisive = (top2[:, 0] - top2[:, 1]) > 0.05
    agree = ((a.argmax(-1) == b.argmax(-1)) & decisive).sum().item()
    return f"min cos {cos.min().item():.5f}, mean {cos.mean().item():.5f}, top-1 {agree}/{decisive.sum().item()}"


def main() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (TOKENS,))
    for init in sys.argv[1].split(","):
        w = make_weights(init)
        f32, bf16, bf16_p = forward(w, ids, "f32"), forward(w, ids, "bf16"), forward(w, ids, "bf16-p")
        temperature = (math.sqrt(2 / (5 * HIDDEN)) if init == "neox" else float(init[3:])) * math.sqrt(HIDDEN)
        print(f"{init}: q/k/gate std {temperature:.2f}, logits std {f32.std().item():.2f} | "
              f"bf16 vs f32: {compare(bf16, f32)} | bf16 vs bf16-p: {compare(bf16, bf16_p)}", flush=True)


if __name__ == "__main__":
    main()
