"""Packing with exact masking, checked against running each example alone."""

import itertools
import random

import pytest
import torch

from realm_kernel.train.data import IGNORE, PadCollator, build_datasets
from realm_kernel.train.packing import (
    PackedCollator,
    PackedDataset,
    block_causal_mask,
    masked_capacity,
    pack_indices,
)
from realm_kernel.train.selfcheck import MaskingError, check_labels, check_packed_batch


def test_pack_indices_places_every_example_once_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(5, 200) for _ in range(3000)]
    rows = pack_indices(lengths, 256)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 256 for r in rows)
    assert sum(lengths) / (len(rows) * 256) > 0.97, "best-fit rows come out nearly full"
    assert rows == pack_indices(lengths, 256), "deterministic"
    with pytest.raises(ValueError, match="exceeds the pack length"):
        pack_indices([300], 256)


def test_masked_capacity_is_the_shortest_row_that_packs_full_enough():
    # 300 alone in a row of 320, the 100s three to a row: 3300 / (11 * 320) = 94% full.
    assert masked_capacity([300] + [100] * 30, 1024) == 320
    # Pairs of 200 never fill a row to 90% below 512: max_length it is.
    assert masked_capacity([200] * 5, 512) == 512
    assert masked_capacity([40] * 63, 512) == 128, "one to a row of 64 is 62% full, three to 128: 94%"


def test_block_causal_mask():
    seg = torch.tensor([[0, 0, 1, 1, 1, -1]])
    m = block_causal_mask(seg)[0, 0]
    assert m.shape == (6, 6)
    assert m[1, 0] and not m[0, 1], "causal"
    assert not m[2, 1] and not m[4, 0], "no attention across examples"
    assert m[4, 2] and m[5, 5] and not m[5, 4], "padding only sees itself"


@pytest.fixture(scope="module")
def hero(dio_mini_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from realm_kernel.train.segment_attention import register
    register()
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    models = {impl: AutoModelForCausalLM.from_pretrained(dio_mini_dir, attn_implementation=impl).eval()
              for impl in ("sdpa", "eager", "sdpa_segments")}
    return tok, models


def mixed_examples(n=12, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        turns = [{"role": "system", "content": "Be exact."}] if i % 3 == 0 else []
        for _ in range(rng.randint(1, 3)):
            turns.append({"role": "user", "content": " ".join(["①⓪"] * rng.randint(1, 12)) + " ?"})
            turns.append({"role": "assistant", "content": "⓪" * rng.randint(1, 9)})
        out.append({"messages": turns})
    return out


def per_example_losses(model, batch, examples_rows):
    """Loss of each example computed alone, padded one by one."""
    out = []
    for row in examples_rows:
        b = PadCollator(0)([row])
        logits = model(input_ids=b["input_ids"]).logits[0]
        target = torch.cat([b["labels"][0, 1:], torch.tensor([IGNORE])])
        out.append(torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE,
                                                     reduction="sum").item())
    return out


@pytest.mark.parametrize("impl", ["sdpa", "eager", "sdpa_segments"])
@torch.no_grad()
def test_packed_loss_equals_unpacked_reference(hero, impl):
    tok, models = hero
    model = models[impl]
    train, _, _ = build_datasets(tok, mixed_examples(), 256, 0.0, 0, 0)
    packed = PackedDataset(train.rows, capacity=256)
    assert len(packed) < len(train)
    collate = PackedCollator(tok.pad_token_id, impl)
    for r in range(len(packed)):
        batch = collate([packed[r]])
        assert batch["num_real_tokens"] == sum(len(e["input_ids"]) for e in packed[r])
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                       attention_mask=batch.get("attention_mask")).logits[0]
        labels = batch["labels"][0]
        target = torch.cat([labels[1:], torch.tensor([IGNORE])])
        at = 0
        alone = per_example_losses(model, batch, packed[r])
        for ex, ref in zip(packed[r], alone, strict=True):
            n = len(ex["input_ids"])
            got = torch.nn.functional.cross_entropy(logits[at:at + n], target[at:at + n],
                                                    ignore_index=IGNORE, reduction="sum").item()
            assert got == pytest.approx(ref, abs=1e-4), f"example at {at} ({impl})"
            at += n
        assert check_packed_batch(model, batch) < 1e-3


@torch.no_grad()
def test_self_check_catches_cross_attention(hero):
    tok, models = hero
    train, _, _ = build_datasets(tok, mixed_examples(), 256, 0.0, 0, 0)
    packed = PackedDataset(train.rows, capacity=256)
    row = max(packed.rows, key=len)
    leaky = PackedCollator(tok.pad_token_id, "flash_attention_2")([row])  # no mask on sdpa
    with pytest.raises(MaskingError, match="attend to each other"):
        check_packed_batch(models["sdpa"], leaky)
    bad = PackedCollator(tok.pad_token_id, "sdpa")([row])
    bad["attention_mask"] = torch.ones_like(bad["attention_mask"]).tril()[:, :, :, :]
    with pytest.raises(MaskingError, match="mask lets packed examples see each other"):
        check_packed_batch(models["sdpa"], bad)


def test_segment_attention_trains_as_the_masked_path_does(hero):
    """Several packed rows: sdpa_segments on them as one unpadded row gives the masked
    path's loss and gradients on the padded rows (what training follows), and the bounds
    it finds are the examples'."""
    from realm_kernel.train.segment_attention import segment_bounds
    tok, models = hero
    train, _, _ = build_datasets(tok, mixed_examples(16, seed=5), 256, 0.0, 0, 0)
    packed = PackedDataset(train.rows, capacity=160)
    rows = packed.rows[:3]
    masked = PackedCollator(tok.pad_token_id, "sdpa")(rows)
    flat = PackedCollator(tok.pad_token_id, "sdpa_segments")(rows)
    lengths = [len(e["input_ids"]) for row in rows for e in row]
    assert "attention_mask" not in flat and flat["input_ids"].shape == (1, sum(lengths)), "no padding"
    assert flat["num_real_tokens"] == sum(lengths) == masked["num_real_tokens"]
    assert flat["labels"].ne(IGNORE).sum() == masked["labels"].ne(IGNORE).sum()
    ends = list(itertools.accumulate(lengths))
    assert segment_bounds(flat["position_ids"], 1) == [list(zip([0, *ends[:-1]], ends, strict=True))]
    # Rows with padding (the masked path's batch, positions and all): padding is a segment.
    width = masked["input_ids"].shape[1]
    for r, row in enumerate(rows):
        ends = list(itertools.accumulate(len(e["input_ids"]) for e in row))
        want = list(zip([0, *ends[:-1]], ends, strict=True))
        want += [(ends[-1], width)] if ends[-1] < width else []
        assert segment_bounds(masked["position_ids"], len(rows))[r] == want, "examples, then the padding"
    grads = {}
    for impl, batch in (("sdpa", masked), ("sdpa_segments", flat)):
        model = models[impl]
        model.zero_grad()
        with torch.enable_grad():
            loss = model(**{k: v for k, v in batch.items() if k != "num_real_tokens"}).loss
            loss.backward()
        grads[impl] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()})
    (la, ga), (lb, gb) = grads["sdpa"], grads["sdpa_segments"]
    assert lb == pytest.approx(la, abs=1e-5)
    for name, g in ga.items():
        assert torch.allclose(gb[name], g, atol=1e-5, rtol=1e-4), name
    for model in models.values():
        model.zero_grad(set_to_none=True)


@torch.no_grad()
def test_a_segments_model_generates_as_sdpa_does(hero):
    """Padding masks, a KV cache and decode steps take transformers' sdpa path: batched,
    left-padded greedy generation is token for token the same."""
    tok, models = hero
    prompts = [tok.apply_chat_template([{"role": "user", "content": c}], tokenize=False,
                                       add_generation_prompt=True) for c in ("①⓪ ?", "①①①⓪⓪ ① ⓪ ?")]
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = {impl: models[impl].generate(**enc, max_new_tokens=12, do_sample=False,
                                       pad_token_id=tok.pad_token_id)
           for impl in ("sdpa", "sdpa_segments")}
    assert torch.equal(out["sdpa"], out["sdpa_segments"])


def test_self_check_catches_loss_on_prompt_tokens(hero):
    tok, _ = hero
    examples = mixed_examples(4)
    train, _, _ = build_datasets(tok, examples, 256, 0.0, 0, 0)
    check_labels(tok, train.rows, examples)
    broken = dict(train.rows[0])
    broken["labels"] = list(broken["input_ids"])  # loss on every token, prompt included
    with pytest.raises(MaskingError, match="outside assistant replies"):
        check_labels(tok, [broken], examples)


def test_row_layouts_built_once_collate_as_plain_rows(dio_mini_dir):
    """A packed row's ids, labels, positions and segments are built when the dataset is;
    the collated batch (mask included) is the same as from the bare examples."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    train, _, _ = build_datasets(tok, mixed_examples(20, seed=4), 256, 0.0, 0, 0)
    packed = PackedDataset(train.rows, capacity=256)
    rows = [packed[0], packed[len(packed) - 1]]
    assert all(row.layout is not None for row in rows)
    for impl in ("sdpa", "eager"):
        collate = PackedCollator(tok.pad_token_id, impl)
        ready, bare = collate(rows), collate([list(r) for r in rows])
        assert ready.keys() == bare.keys()
        for k in ready:
            assert torch.equal(ready[k], bare[k]), k
        assert torch.equal(ready["attention_mask"], collate(rows)["attention_mask"]), "kept causal matrix"


def test_packed_dataset_efficiency_and_collated_batch_layout(dio_mini_dir):
    """What the trainer is handed: long ids, labels and positions (positions restart per
    example, padding continues as its own run), no loss on an example's first token or on
    padding, the mask in the dtype asked for, and the rows' fill as efficiency."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    train, _, _ = build_datasets(tok, mixed_examples(20, seed=3), 256, 0.0, 0, 0)
    packed = PackedDataset(train.rows, capacity=256)
    used = sum(len(e["input_ids"]) for e in train.rows)
    assert packed.capacity == 256 and packed.efficiency() == pytest.approx(used / (len(packed) * 256))
    rows = sorted(packed.rows, key=lambda r: sum(len(e["input_ids"]) for e in r))[:2]
    lengths = [[len(e["input_ids"]) for e in r] for r in rows]
    width = max(map(sum, lengths))
    flat = PackedCollator(tok.pad_token_id, "sdpa_segments")(rows)
    assert flat["input_ids"].shape == (1, sum(map(sum, lengths))) == (1, flat["num_real_tokens"])
    assert flat.keys() == {"input_ids", "labels", "position_ids", "num_real_tokens"}
    at = 0
    for n in (n for lens in lengths for n in lens):
        assert flat["position_ids"][0, at:at + n].tolist() == list(range(n))
        assert flat["labels"][0, at] == IGNORE
        at += n
    for impl, dtype in (("sdpa", torch.bool), ("eager", torch.bfloat16), ("flash_attention_2", None)):
        b = PackedCollator(tok.pad_token_id, impl, mask_dtype=torch.bfloat16)(rows)
        assert {k: b[k].dtype for k in ("input_ids", "labels", "position_ids")} == dict.fromkeys(
            ("input_ids", "labels", "position_ids"), torch.long)
        assert b["input_ids"].shape == (2, width) and b["num_real_tokens"] == sum(map(sum, lengths))
        if dtype is None:
            assert "attention_mask" not in b
        else:
            assert b["attention_mask"].dtype == dtype and b["attention_mask"].shape == (2, 1, width, width)
        for r, lens in enumerate(lengths):
            at = 0
            for n in lens:
                assert b["position_ids"][r, at:at + n].tolist() == list(range(n))
                assert b["labels"][r, at] == IGNORE, "no loss on an example's first token"
                at += n
            assert b["input_ids"][r, at:].eq(tok.pad_token_id).all() and b["labels"][r, at:].eq(IGNORE).all()
            assert b["position_ids"][r, at:].tolist() == list(range(width - at))
    eager = PackedCollator(tok.pad_token_id, "eager")(rows)["attention_mask"]
    assert eager.dtype == torch.float32 and eager.min() == torch.finfo(torch.float32).min and eager.max() == 0


def test_segment_attention_runs_in_float32_under_cpu_autocast():
    """Training with bf16 autocast on a CPU: each example's attention is computed in
    float32 (CPU flash attention's bf16 backward is the slower one), from the same inputs
    the float32 path gets, and gradients flow back to the bf16 projections."""
    from realm_kernel.train.segment_attention import segment_attention
    torch.manual_seed(0)
    module = torch.nn.Module()
    q = torch.randn(1, 4, 30, 8, requires_grad=True)
    k = torch.randn(1, 2, 30, 8, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 2, 30, 8, dtype=torch.bfloat16, requires_grad=True)
    pos = torch.cat([torch.arange(12), torch.arange(18)])[None]
    want, _ = segment_attention(module, q, k.float(), v.float(), None, position_ids=pos)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = segment_attention(module, q, k, v, None, position_ids=pos)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)
    got.sum().backward()
    assert k.grad is not None and k.grad.dtype == torch.bfloat16 and q.grad.dtype == torch.float32
