#!/usr/bin/env python3
"""A Llama-3-sized byte-level BPE tokenizer for the random-weight benchmark checkpoints.

No real Llama 3 tokenizer can be downloaded here, and the serving stack needs one that loads (the
router tokenizes chat prompts and detokenizes every output token). This writes a valid
Hugging Face `tokenizer.json` with 128,256 ids, as Llama 3 has: 256 byte tokens (GPT-2's
byte-to-unicode alphabet), 127,744 merges, and 256 special tokens at 128000..128255
(`<|begin_of_text|>` 128000, `<|end_of_text|>` 128001, `<|eot_id|>` 128009, reserved ones), plus a
`tokenizer_config.json` with Llama 3's chat template.

The merges are learned deterministically from text in this repository (pair counts over its source
files, Byte-Pair-Encoding style) until the corpus runs out of pairs; the rest are synthetic
concatenations of earlier tokens (letters, then common pieces), so every merge is valid BPE (both
sides exist before it). Benchmarks send token ids, so what matters is the vocabulary's size and
shape, not its quality. Standard library only.

    python3 bench/cuda/make_tokenizer.py --out /tmp/llama-8b [--vocab 128256]
"""

import argparse
import collections
import json
import os
import re

NUM_SPECIAL = 256
BEGIN, END, EOT = 128000, 128001, 128009
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def byte_alphabet():
    """GPT-2's reversible byte -> printable character map."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def corpus_words(root, limit_bytes=1_000_000):
    """Words (GPT-2 pre-tokenizer style, bytes mapped) of the repo's text files, with counts."""
    alphabet = byte_alphabet()
    pattern = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+""")
    counts = collections.Counter()
    seen = 0
    for folder in ["docs", "services", "native", "bench/src", "proto", "test/e2e"]:
        for dirpath, _dirs, files in sorted(os.walk(os.path.join(root, folder))):
            if "node_modules" in dirpath or "/build" in dirpath or "/gen" in dirpath:
                continue
            for name in sorted(files):
                if not name.endswith((".ts", ".md", ".cc", ".h", ".cu", ".cuh", ".proto", ".py", ".sh")):
                    continue
                try:
                    text = open(os.path.join(dirpath, name), encoding="utf-8").read()
                except (OSError, UnicodeDecodeError):
                    continue
                seen += len(text)
                for piece in pattern.findall(text):
                    counts["".join(alphabet[b] for b in piece.encode("utf-8"))] += 1
                if seen > limit_bytes:
                    return counts
    return counts


def learn_merges(counts, budget):
    """Classic BPE: repeatedly merge the most frequent adjacent pair (ties: lexicographic)."""
    # The 4,000 most frequent words: enough pairs for the learned part, and fast in pure Python.
    words = {tuple(word): n for word, n in counts.most_common(4000)}
    merges = []
    while len(merges) < budget:
        pairs = collections.Counter()
        for word, n in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), n = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if n < 2:
            break
        merges.append((a, b))
        joined = a + b
        merged = {}
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(joined)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


def synthetic_merges(vocab, merges, budget):
    """Valid filler merges: concatenations of two of the 512 shortest tokens, every (a, b) pair in a
    fixed order (262,144 candidates), skipping tokens that exist."""
    pieces = sorted(vocab, key=lambda t: (len(t), t))[:512]
    n = len(pieces)
    for i in range(n * n):
        if len(merges) >= budget:
            break
        a, b = pieces[(i * 7919) % n], pieces[i // n]
        token = a + b
        if token in vocab:
            continue
        vocab[token] = len(vocab)
        merges.append((a, b))
    assert len(merges) >= budget, f"only {len(merges)} merges"
    return merges


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--learned", type=int, default=300, help="merges learned from the corpus at most")
    args = parser.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    alphabet = byte_alphabet()
    vocab = {alphabet[b]: b for b in range(256)}
    num_regular = args.vocab - NUM_SPECIAL
    merges = learn_merges(corpus_words(root), min(args.learned, num_regular - 256))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    merges = synthetic_merges(vocab, merges, num_regular - 256)
    assert len(vocab) == num_regular, (len(vocab), num_regular)

    names = {BEGIN: "<|begin_of_text|>", END: "<|end_of_text|>", EOT: "<|eot_id|>",
             128006: "<|start_header_id|>", 128007: "<|end_header_id|>"}
    special = [
        {"id": i, "content": names.get(i, f"<|reserved_special_token_{i - num_regular}|>"), "single_word": False,
         "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i in range(num_regular, args.vocab)
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": names[BEGIN], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": names[BEGIN], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": names[BEGIN], "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {names[BEGIN]: {"id": names[BEGIN], "ids": [BEGIN], "tokens": [names[BEGIN]]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": names[BEGIN],
        "eos_token": names[EOT],
        "model_max_length": 131072,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": True,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    print(f"wrote {args.out}/tokenizer.json: {args.vocab} ids ({len(merges)} merges, {NUM_SPECIAL} special)")


if __name__ == "__main__":
    main()
