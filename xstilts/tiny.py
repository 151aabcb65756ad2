"""Tiny XLM-R-architecture models built locally: the kit's embedded default and its test models.

A SentencePiece Unigram tokenizer is trained on a shipped corpus (``tests/fixtures/corpus.txt``)
and laid out like XLM-R's vocabulary (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, pieces,
``<mask>`` last); models of several sizes share it, as the real XLM-R sizes do. A short MLM
warm-up on the same corpus keeps the numbers from being pure chance. Everything is saved as a
normal Hugging Face directory (safetensors) that ``from_pretrained`` loads.

    python -m xstilts.tiny --out_dir models --sizes tiny-2l-h64 tiny-4l-h128
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import tempfile
import time
from pathlib import Path

import torch

from .paths import KIT_ROOT

logger = logging.getLogger(__name__)

SIZES = {
    "tiny-2l-h64": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=256),
    "tiny-4l-h128": dict(num_hidden_layers=4, hidden_size=128, num_attention_heads=4, intermediate_size=512),
}
DEFAULT_CORPUS = KIT_ROOT / "tests" / "fixtures" / "corpus.txt"


def read_corpus(path: str | Path) -> list[str]:
    lines = [l.strip() for l in Path(path).read_text(encoding="utf-8").splitlines()]
    return [l for l in lines if l]


def train_tokenizer(lines: list[str], vocab_size: int = 4000, seed: int = 1):
    """SentencePiece Unigram (NFKC, like XLM-R) -> transformers XLMRobertaTokenizer."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import XLMRobertaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp) / "sp"), vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, hard_vocab_limit=False, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1,
            normalization_rule_name="nmt_nfkc", num_threads=1, minloglevel=2,
            input_sentence_size=0, shuffle_input_sentence=False)
        proto = pb.ModelProto()
        proto.ParseFromString((Path(tmp) / "sp.model").read_bytes())
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(p.piece, p.score) for p in proto.pieces[1:]]  # spm's own <unk> (id 0) is ours at 3
    vocab += [("<mask>", 0.0)]
    tok = XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap)
    tok.model_max_length = 512
    return tok


def build_model(size: str, tokenizer, seed: int = 1):
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(seed)
    cfg = XLMRobertaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, layer_norm_eps=1e-5, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, **SIZES[size])
    return XLMRobertaForMaskedLM(cfg)


def mlm_warmup(model, tokenizer, lines: list[str], *, steps: int, batch_size: int = 32, max_length: int = 64,
               lr: float = 1e-3, seed: int = 1, log_every: int = 50) -> dict:
    """A short masked-LM pre-training loop (15% masking, AdamW, linear decay)."""
    from transformers import DataCollatorForLanguageModeling

    if steps <= 0:
        return {"steps": 0}
    rng = random.Random(seed)
    torch.manual_seed(seed)
    enc = tokenizer(lines, truncation=True, max_length=max_length)["input_ids"]
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps))
    model.train()
    order: list[int] = []
    losses = []
    first = None
    t0 = time.time()
    for step in range(steps):
        if len(order) < batch_size:
            more = list(range(len(enc)))
            rng.shuffle(more)
            order += more
        idx, order = order[:batch_size], order[batch_size:]
        batch = collate([{"input_ids": enc[i]} for i in idx])
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if first is None:
            first = sum(losses) / len(losses)
        if (step + 1) % log_every == 0:
            logger.info("MLM step %d/%d loss %.3f", step + 1, steps, sum(losses[-log_every:]) / log_every)
    model.eval()
    window = min(len(losses), 50)
    return {"steps": steps, "batch_size": batch_size, "max_length": max_length, "lr": lr,
            "first_loss": losses[0], "final_loss_mean_last_50": sum(losses[-window:]) / window,
            "seconds": time.time() - t0}


def build(out_dir: str | Path, sizes=tuple(SIZES), corpus: str | Path = DEFAULT_CORPUS, *, vocab_size: int = 4000,
          mlm_steps: int = 300, seed: int = 1) -> dict:
    out_dir = Path(out_dir)
    lines = read_corpus(corpus)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    t0 = time.time()
    tok = train_tokenizer(lines, vocab_size=vocab_size, seed=seed)
    tok_seconds = time.time() - t0
    report = {}
    for size in sizes:
        if size not in SIZES:
            raise ValueError(f"unknown tiny size {size!r}; valid: {', '.join(SIZES)}")
        t1 = time.time()
        model = build_model(size, tok, seed=seed)
        warm = mlm_warmup(model, tok, lines, steps=mlm_steps, seed=seed)
        d = out_dir / size
        d.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        tok.save_pretrained(d)
        info = {"size": size, "architecture": SIZES[size], "vocab_size": len(tok),
                "n_params": sum(p.numel() for p in model.parameters()),
                "n_params_encoder": sum(p.numel() for p in model.roberta.parameters()),
                "corpus": str(corpus), "corpus_lines": len(lines), "corpus_sha256_16": digest,
                "tokenizer_seconds": tok_seconds, "mlm_warmup": warm, "seed": seed,
                "build_seconds": time.time() - t1}
        (d / "xstilts_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
        report[size] = info
        logger.info("built %s: %d params, MLM loss %.2f -> %.2f in %.1fs", size, info["n_params"],
                    warm.get("first_loss", math.nan), warm.get("final_loss_mean_last_50", math.nan),
                    info["build_seconds"])
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out_dir", default=str(KIT_ROOT / "models"))
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--vocab_size", type=int, default=4000)
    ap.add_argument("--mlm_steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    build(args.out_dir, args.sizes, args.corpus, vocab_size=args.vocab_size, mlm_steps=args.mlm_steps, seed=args.seed)


if __name__ == "__main__":
    main()
