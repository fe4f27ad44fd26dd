"""The model against what the theory guarantees, with independent references written here.

* Hopfield energy: the update ``ξ ← Xᵀ softmax(β X ξ)`` never increases
  ``E(ξ) = -lse(β, X ξ) + ½ ξᵀξ``; with a large β one update retrieves a stored pattern.
* HopfieldPooling: permutation invariance, exact masking, one step = scaled dot-product attention,
  more steps = the iterated update in key space, β, gradients.
* SequenceEmbedding: the lookup path equals the one-hot conv1d (forward and gradients), and the
  conv1d equals a convolution written out with loops.
* DeepRC: padding sequences (length 0) and the order of sequences do not change a logit; both
  embedding implementations give the same logits and gradients.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from deeprc.model import DeepRC, HopfieldPooling, ModelConfig, SequenceEmbedding, build_model
from deeprc.model import embedding as embedding_module
from deeprc.model.embedding import N_TOKENS, position_features
from deeprc.model.hopfield import energy

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add overhead (float64 conv1d: ~15 ms vs 0.02 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- references


def hopfield_update(state: torch.Tensor, stored: torch.Tensor, beta: float) -> torch.Tensor:
    """``Xᵀ softmax(β X ξ)`` for one state ``(d,)`` and stored patterns ``(n, d)``, by hand."""
    scores = beta * (stored @ state)
    weights = torch.exp(scores - scores.max())
    weights = weights / weights.sum()
    return stored.T @ weights


def energy_by_hand(state: torch.Tensor, stored: torch.Tensor, beta: float) -> float:
    scores = [beta * float(torch.dot(x, state)) for x in stored]
    top = max(scores)
    lse = (top + math.log(sum(math.exp(s - top) for s in scores))) / beta
    return -lse + 0.5 * float(torch.dot(state, state))


def project(linear: torch.nn.Linear, x: torch.Tensor, heads: int, hidden: int) -> torch.Tensor:
    """``(B, N, D)`` -> ``(B, heads, N, hidden)`` with the linear layer's weights, by hand."""
    out = x @ linear.weight.T + linear.bias
    return out.reshape(x.shape[0], x.shape[1], heads, hidden).permute(0, 2, 1, 3)


def pooling_by_hand(
    pool: HopfieldPooling, x: torch.Tensor, mask: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Iterated Hopfield update in key space, then one retrieval of the values, per bag/head,
    followed by the log of the mean of exp(score)."""
    heads, hidden, beta = pool.num_heads, pool.hidden_size, pool.beta
    keys = project(pool.key, x, heads, hidden)
    values = project(pool.value, x, heads, hidden)
    batch = x.shape[0]
    pooled = torch.zeros(batch, heads, hidden + 1, dtype=x.dtype)
    assoc = torch.zeros(batch, heads, x.shape[1], dtype=x.dtype)
    for b, h in itertools.product(range(batch), range(heads)):
        real = mask[b]
        stored = keys[b, h][real]
        state = pool.state[h]
        for _ in range(steps - 1):
            state = hopfield_update(state, stored, beta)
        scores = beta * (stored @ state)
        weights = torch.softmax(scores, dim=0)
        assoc[b, h, real] = weights
        pooled[b, h, :hidden] = values[b, h][real].T @ weights
        pooled[b, h, hidden] = torch.log(torch.exp(scores).mean())
    return pooled.reshape(batch, -1), assoc


def random_tokens(
    n: int, width: int, lengths: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Amino-acid tokens 1..20 up to each length, zero after it."""
    tokens = torch.randint(1, N_TOKENS, (n, width), generator=generator)
    inside = torch.arange(width)[None, :] < lengths[:, None]
    return (tokens * inside).to(torch.uint8)


def embedding_pair(n_kernels: int, kernel_size: int) -> tuple[SequenceEmbedding, ...]:
    lookup = SequenceEmbedding(n_kernels=n_kernels, kernel_size=kernel_size).to(F64)
    dense = SequenceEmbedding(
        n_kernels=n_kernels, kernel_size=kernel_size, implementation="dense"
    ).to(F64)
    with torch.no_grad():  # a bias too, so that the bias row of the table is exercised
        lookup.conv.bias.normal_()
    dense.load_state_dict(lookup.state_dict())
    return lookup, dense


# ----------------------------------------------------------------------------- energy


def test_energy_formula_matches_by_hand():
    torch.manual_seed(0)
    for n, d, beta in [(1, 1, 1.0), (4, 3, 0.1), (7, 5, 3.0), (3, 8, 40.0)]:
        stored = torch.randn(n, d, dtype=F64)
        state = torch.randn(d, dtype=F64)
        got = float(energy(state, stored, beta))
        assert got == pytest.approx(energy_by_hand(state, stored, beta), rel=1e-12, abs=1e-12)
    # batched leading dimensions
    stored = torch.randn(2, 3, 6, 4, dtype=F64)
    state = torch.randn(2, 3, 4, dtype=F64)
    batched = energy(state, stored, 0.7)
    assert batched.shape == (2, 3)
    for i, j in itertools.product(range(2), range(3)):
        expected = energy_by_hand(state[i, j], stored[i, j], 0.7)
        assert float(batched[i, j]) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_energy_never_increases_under_the_update():
    torch.manual_seed(1)
    decreased = cases = 0
    for n, d, beta, scale in itertools.product(
        (1, 2, 5, 20), (1, 3, 8), (0.01, 0.3, 1.0, 8.0, 100.0), (0.3, 1.0, 3.0)
    ):
        for _ in range(3):
            stored = scale * torch.randn(n, d, dtype=F64)
            state = 2 * scale * torch.randn(d, dtype=F64)
            energies = [float(energy(state, stored, beta))]
            for _ in range(10):
                state = hopfield_update(state, stored, beta)
                energies.append(float(energy(state, stored, beta)))
            for step, (before, after) in enumerate(itertools.pairwise(energies)):
                assert after <= before + 1e-10, (
                    f"energy rose at step {step + 1} (n={n}, d={d}, β={beta}, scale={scale}): "
                    f"{before!r} -> {after!r}"
                )
            cases += 1
            decreased += energies[0] - energies[-1] > 1e-6
    # not vacuous: the random start is almost never a fixed point already
    assert decreased > 0.9 * cases


def test_large_beta_retrieves_a_stored_pattern_in_one_step():
    torch.manual_seed(2)
    n, d, beta = 6, 32, 50.0
    stored = F.normalize(torch.randn(n, d, dtype=F64), dim=1)
    overlaps = stored @ stored.T - torch.eye(n, dtype=F64)
    assert overlaps.max() < 0.6, "patterns not well separated; change the seed"
    for i in range(n):
        start = stored[i] + 0.02 * torch.randn(d, dtype=F64)
        retrieved = hopfield_update(start, stored, beta)
        distances = (stored - retrieved).norm(dim=1)
        assert distances[i] < 1e-3, distances
        assert distances.argmin() == i
        assert (distances[torch.arange(n) != i] > 0.5).all()
        # and the energy went down while moving there
        assert energy(retrieved, stored, beta) < energy(start, stored, beta)


# ----------------------------------------------------------------------------- HopfieldPooling


def make_pool(**kwargs) -> HopfieldPooling:
    kwargs.setdefault("input_size", 5)
    kwargs.setdefault("hidden_size", 4)
    kwargs.setdefault("num_heads", 2)
    return HopfieldPooling(**kwargs).to(F64).eval()


def test_pooling_shapes():
    torch.manual_seed(3)
    pool = make_pool(update_steps=2)
    x = torch.randn(3, 7, 5, dtype=F64)
    mask = torch.rand(3, 7) < 0.7
    mask[:, 0] = True
    pooled, assoc = pool(x, mask)
    assert pooled.shape == (3, 10)  # 2 heads x (4 retrieved + 1 log-mean-exp)
    assert assoc.shape == (3, 2, 7)
    assert pool.output_size == 10
    with pytest.raises(ValueError, match="update_steps"):
        HopfieldPooling(input_size=5, update_steps=0)


@pytest.mark.parametrize("steps", [1, 3])
def test_pooling_is_permutation_invariant(steps: int):
    torch.manual_seed(4)
    pool = make_pool(update_steps=steps, scaling=0.8)
    x = torch.randn(2, 9, 5, dtype=F64)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, [2, 5, 8]] = False
    pooled, assoc = pool(x, mask)
    perm = torch.randperm(9)
    assert not torch.equal(perm, torch.arange(9))
    pooled_p, assoc_p = pool(x[:, perm], mask[:, perm])
    torch.testing.assert_close(pooled_p, pooled, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(assoc_p, assoc[:, :, perm], rtol=1e-12, atol=1e-12)
    # the association is not uniform, so the permutation check compares something
    assert (assoc[1].max(dim=-1).values - assoc[1].min(dim=-1).values > 1e-3).all()


@pytest.mark.parametrize("steps", [1, 3])
def test_pooling_ignores_padded_instances(steps: int):
    torch.manual_seed(5)
    pool = make_pool(update_steps=steps)
    real = torch.randn(1, 4, 5, dtype=F64)
    alone, assoc_alone = pool(real)  # no mask at all
    alone_masked, _ = pool(real, torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(alone_masked, alone, rtol=0, atol=0)

    # the same bag with padding interleaved; padded values are garbage, then huge numbers
    where = torch.tensor([0, 2, 3, 6])  # real positions among 8
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, where] = True
    for fill in (lambda s: torch.randn(s, dtype=F64), lambda s: torch.full(s, 1e30, dtype=F64)):
        padded = fill((1, 8, 5)).clone()
        padded[0, where] = real[0]
        padded.requires_grad_(True)
        pooled, assoc = pool(padded, mask)
        assert torch.all(assoc[0][:, ~mask[0]] == 0), "padded positions must get exactly 0"
        torch.testing.assert_close(assoc.sum(-1), torch.ones(1, 2, dtype=F64), rtol=0, atol=1e-12)
        torch.testing.assert_close(pooled, alone, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(assoc[:, :, where], assoc_alone, rtol=1e-12, atol=1e-12)
        pooled.sum().backward()
        assert torch.all(padded.grad[0, ~mask[0]] == 0)
        assert torch.isfinite(padded.grad).all()


def test_one_update_step_is_scaled_dot_product_attention():
    torch.manual_seed(6)
    heads, hidden = 3, 4
    pool = make_pool(num_heads=heads, hidden_size=hidden, update_steps=1)
    x = torch.randn(2, 6, 5, dtype=F64)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    pooled, assoc = pool(x, mask)

    keys = project(pool.key, x, heads, hidden)
    values = project(pool.value, x, heads, hidden)
    query = pool.state[None, :, None, :].expand(2, heads, 1, hidden)
    expected = F.scaled_dot_product_attention(
        query, keys, values, attn_mask=mask[:, None, None, :], scale=1 / math.sqrt(hidden)
    )
    retrieved = pooled.view(2, heads, hidden + 1)[..., :hidden]
    torch.testing.assert_close(retrieved, expected.squeeze(2), rtol=1e-12, atol=1e-12)

    scores = (query @ keys.transpose(-1, -2)).squeeze(2) / math.sqrt(hidden)
    weights = torch.softmax(scores.masked_fill(~mask[:, None, :], -math.inf), dim=-1)
    torch.testing.assert_close(assoc, weights, rtol=1e-12, atol=1e-12)
    by_hand, assoc_by_hand = pooling_by_hand(pool, x, mask, steps=1)
    torch.testing.assert_close(pooled, by_hand, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(assoc, assoc_by_hand, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("steps", [2, 4])
def test_more_update_steps_iterate_the_update_in_key_space(steps: int):
    torch.manual_seed(7)
    pool = make_pool(num_heads=2, hidden_size=3, update_steps=steps, scaling=1.5)
    x = torch.randn(3, 7, 5, dtype=F64)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 3:] = False
    mask[2, [1, 4]] = False
    pooled, assoc = pool(x, mask)
    by_hand, assoc_by_hand = pooling_by_hand(pool, x, mask, steps)
    torch.testing.assert_close(pooled, by_hand, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(assoc, assoc_by_hand, rtol=1e-12, atol=1e-12)
    # the extra steps matter: one step gives something else
    one_step, _ = pooling_by_hand(pool, x, mask, 1)
    assert one_step.shape == pooled.shape
    assert (pooled - one_step).abs().max() > 1e-4

    # and each head's state lowers the energy over its bag's keys step by step
    keys = project(pool.key, x, 2, 3)
    for b, h in itertools.product(range(3), range(2)):
        stored, state = keys[b, h][mask[b]].detach(), pool.state[h].detach()
        e = [float(energy(state, stored, pool.beta))]
        for _ in range(steps - 1):
            state = hopfield_update(state, stored, pool.beta)
            e.append(float(energy(state, stored, pool.beta)))
        assert all(after <= before + 1e-10 for before, after in itertools.pairwise(e))


def test_default_beta_and_scaling_override():
    torch.manual_seed(8)
    for hidden in (1, 4, 9, 32):
        assert make_pool(hidden_size=hidden).beta == pytest.approx(1 / math.sqrt(hidden))
    assert make_pool(scaling=2.5).beta == 2.5
    assert make_pool(scaling=0.0).beta == 0.0  # 0 is a value, not "unset"

    x = torch.randn(2, 5, 5, dtype=F64)
    mask = torch.ones(2, 5, dtype=torch.bool)
    default = make_pool(hidden_size=4)
    scaled = make_pool(hidden_size=4, scaling=2.5)
    scaled.load_state_dict(default.state_dict())
    keys = project(default.key, x, 2, 4)
    scores = torch.einsum("bhnd,hd->bhn", keys, default.state)
    _, assoc_default = default(x, mask)
    _, assoc_scaled = scaled(x, mask)
    torch.testing.assert_close(assoc_default, torch.softmax(scores / 2, -1), rtol=1e-12, atol=0)
    torch.testing.assert_close(assoc_scaled, torch.softmax(2.5 * scores, -1), rtol=1e-12, atol=0)
    assert (assoc_default - assoc_scaled).abs().max() > 1e-3
    # β = 0: uniform association over the real instances
    flat = make_pool(hidden_size=4, scaling=0.0)
    _, assoc_flat = flat(x, mask)
    torch.testing.assert_close(assoc_flat, torch.full_like(assoc_flat, 0.2), rtol=0, atol=1e-15)


@torch.no_grad()
def test_log_mean_exp_counts_matching_instances_and_ignores_bag_size():
    """The retrieved value saturates once a few instances match the query; the log-mean-exp
    keeps growing with their number, and does not change when the whole bag is repeated."""
    torch.manual_seed(10)
    pool = make_pool(input_size=4, hidden_size=4, num_heads=1, scaling=4.0)
    with torch.no_grad():
        pool.key.weight.copy_(torch.eye(4, dtype=F64))
        pool.key.bias.zero_()
        pool.state.copy_(torch.tensor([[2.0, 0.0, 0.0, 0.0]], dtype=F64))
    background = torch.randn(1000, 4, dtype=F64) * 0.1
    signal = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64)
    retrieved, log_mean = [], []
    for k in (10, 20, 40):
        bag = torch.cat([signal.expand(k, -1), background[k:]])[None]
        pooled, _ = pool(bag)
        retrieved.append(pooled[0, :4])
        log_mean.append(float(pooled[0, 4]))
    assert (retrieved[2] - retrieved[1]).abs().max() < 0.02  # the value barely moves
    assert log_mean[1] - log_mean[0] > 0.5 and log_mean[2] - log_mean[1] > 0.5
    bag = torch.cat([signal.expand(10, -1), background[10:]])[None]
    twice, _ = pool(torch.cat([bag, bag], dim=1))
    torch.testing.assert_close(twice, pool(bag)[0], rtol=1e-12, atol=1e-12)
    # a selection standing for the whole bag: only the normalisation changes
    selected, _ = pool(bag[:, :100], bag_size=torch.tensor([1000]))
    torch.testing.assert_close(selected[0, 4], pool(bag)[0][0, 4], rtol=0, atol=0.05)


@pytest.mark.parametrize("steps", [1, 3])
def test_pooling_gradcheck(steps: int):
    torch.manual_seed(9)
    pool = make_pool(input_size=3, hidden_size=2, num_heads=2, update_steps=steps)
    x = torch.randn(2, 4, 3, dtype=F64, requires_grad=True)
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    names = [name for name, _ in pool.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in pool.named_parameters())

    def run(inputs, *flat_params):
        pooled, assoc = torch.func.functional_call(
            pool, dict(zip(names, flat_params, strict=True)), (inputs, mask)
        )
        return pooled, assoc

    assert torch.autograd.gradcheck(run, (x, *params), eps=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- SequenceEmbedding


def position_features_by_hand(length: int, width: int) -> torch.Tensor:
    out = torch.zeros(3, width, dtype=F64)
    for t in range(length):
        u = t / max(length - 1, 1)
        out[0, t] = max(0.0, 1 - 2 * u)
        out[1, t] = max(0.0, 1 - abs(2 * u - 1))
        out[2, t] = min(1.0, max(0.0, 2 * u - 1))
    return out


def test_position_features():
    lengths = torch.tensor([0, 1, 2, 5, 7])
    got = position_features(lengths, 7, F64)
    assert got.shape == (5, 3, 7)
    for i, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[i], position_features_by_hand(length, 7), rtol=0, atol=1e-15)
    five = [[1, 0.5, 0, 0, 0, 0, 0], [0, 0.5, 1, 0.5, 0, 0, 0], [0, 0, 0, 0.5, 1, 0, 0]]
    torch.testing.assert_close(got[3], torch.tensor(five, dtype=F64), rtol=0, atol=0)


def dense_by_hand(module: SequenceEmbedding, tokens: torch.Tensor, lengths: torch.Tensor):
    """conv (zero padded, cross-correlation) -> SELU -> max over t < length, with loops."""
    weight = module.conv.weight.detach()
    bias = module.conv.bias.detach()
    n, width = tokens.shape
    k = module.kernel_size
    half = k // 2
    out = torch.empty(n, module.n_kernels, dtype=F64)
    for i in range(n):
        length = int(lengths[i])
        one_hot = F.one_hot(tokens[i].long(), N_TOKENS)[:, 1:].T.to(F64)  # (20, width)
        x = torch.cat([one_hot, position_features_by_hand(length, width)])  # (23, width)
        for kernel in range(module.n_kernels):
            best = -math.inf
            for t in range(length):
                total = float(bias[kernel])
                for j in range(k):
                    s = t + j - half
                    if 0 <= s < width:
                        total += float(weight[kernel, :, j] @ x[:, s])
                best = max(best, float(F.selu(torch.tensor(total, dtype=F64))))
            out[i, kernel] = best
    return out


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_dense_embedding_equals_a_convolution_written_out(kernel_size: int):
    torch.manual_seed(10)
    _, dense = embedding_pair(n_kernels=3, kernel_size=kernel_size)
    lengths = torch.tensor([1, 3, 6, 2])
    tokens = random_tokens(4, 6, lengths, torch.Generator().manual_seed(10))
    torch.testing.assert_close(
        dense(tokens, lengths), dense_by_hand(dense, tokens, lengths), rtol=1e-12, atol=1e-12
    )


CASES = [  # kernel_size, width, lengths
    (1, 1, [1, 1]),
    (1, 6, [1, 6, 3, 2]),
    (3, 1, [1]),
    (3, 2, [1, 2, 2]),
    (3, 10, [1, 10, 4, 7, 2]),
    (9, 3, [1, 2, 3]),  # kernel wider than every sequence
    (9, 4, [1, 4, 2]),
    (9, 20, [1, 20, 5, 13, 8, 19]),
]


@pytest.mark.parametrize("kernel_size,width,lengths", CASES)
def test_lookup_embedding_equals_dense_forward_and_gradients(kernel_size, width, lengths):
    torch.manual_seed(11)
    lookup, dense = embedding_pair(n_kernels=6, kernel_size=kernel_size)
    lengths = torch.tensor(lengths)
    tokens = random_tokens(len(lengths), width, lengths, torch.Generator().manual_seed(11))
    fast, slow = lookup(tokens, lengths), dense(tokens, lengths)
    assert fast.shape == (len(lengths), 6)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)

    upstream = torch.randn_like(fast)
    fast_grads = torch.autograd.grad(fast, (lookup.conv.weight, lookup.conv.bias), upstream)
    slow_grads = torch.autograd.grad(slow, (dense.conv.weight, dense.conv.bias), upstream)
    for name, a, b in zip(("weight", "bias"), fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=f"d/d conv.{name}")
    assert fast_grads[0].abs().sum() > 0


def test_lookup_embedding_in_many_small_chunks_equals_dense(monkeypatch):
    """Sequences are embedded one length at a time, in chunks: a batch that spans many
    lengths (0 included) and many chunks per length gives the dense result, in input order."""
    monkeypatch.setattr(embedding_module, "_CHUNK_POSITIONS", 20)
    torch.manual_seed(15)
    lookup, dense = embedding_pair(n_kernels=3, kernel_size=9)
    lengths = torch.randint(0, 13, (200,), generator=torch.Generator().manual_seed(15))
    tokens = random_tokens(200, 12, lengths.clamp(max=12), torch.Generator().manual_seed(16))
    fast, slow = lookup(tokens, lengths), dense(tokens, lengths)
    real = lengths > 0  # length 0 is padding: DeepRC masks it after the embedding
    torch.testing.assert_close(fast[real], slow[real], rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(fast) * real[:, None]
    fast_grad = torch.autograd.grad(fast, lookup.conv.weight, upstream)[0]
    slow_grad = torch.autograd.grad(slow, dense.conv.weight, upstream)[0]
    torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-12, atol=1e-12)


def test_lookup_embedding_equals_dense_on_uint8_and_long_and_ignores_tokens_after_length():
    """Both paths read uint8 and long tokens; the lookup path never reads past a length."""
    torch.manual_seed(12)
    lookup, dense = embedding_pair(n_kernels=4, kernel_size=5)
    lengths = torch.tensor([2, 5, 8, 1])
    tokens = torch.randint(1, N_TOKENS, (4, 8), dtype=torch.uint8)
    padded = tokens.masked_fill(torch.arange(8)[None, :] >= lengths[:, None], 0)
    torch.testing.assert_close(lookup(tokens, lengths), dense(padded, lengths), rtol=0, atol=1e-12)
    torch.testing.assert_close(lookup(tokens, lengths), lookup(padded, lengths), rtol=0, atol=0)
    torch.testing.assert_close(
        lookup(tokens.long(), lengths), lookup(tokens, lengths), rtol=0, atol=0
    )


@pytest.mark.parametrize("implementation", ["lookup", "dense"])
def test_embedding_does_not_depend_on_zero_padding_width(implementation: str):
    """Tokens after a length are 0 (the store's padding); more of them change nothing."""
    torch.manual_seed(13)
    module = SequenceEmbedding(n_kernels=5, kernel_size=9, implementation=implementation).to(F64)
    lengths = torch.tensor([1, 3, 7, 7])
    tokens = random_tokens(4, 7, lengths, torch.Generator().manual_seed(13))
    base = module(tokens, lengths)
    for extra in (1, 4, 12):
        wider = F.pad(tokens, (0, extra))
        torch.testing.assert_close(module(wider, lengths), base, rtol=1e-12, atol=1e-12)
    # each row on its own gives the same embedding (no mixing between sequences)
    for i in range(4):
        alone = module(tokens[i : i + 1, : int(lengths[i])], lengths[i : i + 1])
        torch.testing.assert_close(alone, base[i : i + 1], rtol=1e-12, atol=1e-12)


def test_lookup_embedding_gradcheck():
    """The custom backward of the lookup path against finite differences."""
    torch.manual_seed(14)
    lookup, _ = embedding_pair(n_kernels=3, kernel_size=3)
    lengths = torch.tensor([1, 4, 2])
    tokens = random_tokens(3, 4, lengths, torch.Generator().manual_seed(14))
    weight = lookup.conv.weight.detach().clone().requires_grad_(True)
    bias = lookup.conv.bias.detach().clone().requires_grad_(True)

    def run(w, b):
        params = {"conv.weight": w, "conv.bias": b}
        return torch.func.functional_call(lookup, params, (tokens, lengths))

    assert torch.autograd.gradcheck(run, (weight, bias), eps=1e-6, atol=1e-8)


def test_embedding_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        SequenceEmbedding(kernel_size=4)


# ----------------------------------------------------------------------------- DeepRC


def make_deeprc(embedding: str = "lookup", kernel_size: int = 3, **kwargs) -> DeepRC:
    encoder = {"name": "cnn", "n_kernels": 6, "kernel_size": kernel_size,
               "implementation": embedding}  # fmt: skip
    kwargs = {"hidden_size": 4, "num_heads": 2, "output_hidden": (5,), **kwargs}
    return build_model(ModelConfig(encoder=encoder, **kwargs)).to(F64).eval()


def repertoire(n: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (n,), generator=g)
    return random_tokens(n, width, lengths, g), lengths


@pytest.mark.parametrize("steps", [1, 2])
def test_deeprc_ignores_padding_sequences_and_their_order(steps: int):
    torch.manual_seed(15)
    model = make_deeprc(update_steps=steps)
    width = 8
    tok_a, len_a = repertoire(5, width, seed=1)
    tok_b, len_b = repertoire(3, width, seed=2)
    solo_a, assoc_a = model(tok_a[None], len_a[None])
    solo_b, _ = model(tok_b[None], len_b[None])
    assert solo_a.shape == (1,) and assoc_a.shape == (1, 2, 5)
    assert (solo_a - solo_b).abs() > 1e-6  # different repertoires, different logits

    # a batch: b padded to 7 sequences (padding interleaved), a padded with 2 at the end
    n = 7
    tokens = torch.zeros(2, n, width, dtype=torch.uint8)
    lengths = torch.zeros(2, n, dtype=torch.long)
    tokens[0, :5], lengths[0, :5] = tok_a, len_a
    where_b = torch.tensor([1, 4, 6])
    tokens[1, where_b], lengths[1, where_b] = tok_b, len_b
    logits, assoc = model(tokens, lengths)
    assert logits.shape == (2,) and assoc.shape == (2, 2, n)
    torch.testing.assert_close(logits, torch.cat([solo_a, solo_b]), rtol=1e-12, atol=1e-12)
    assert torch.all(assoc[lengths[:, None, :].expand_as(assoc) == 0] == 0)
    torch.testing.assert_close(assoc[0, :, :5], assoc_a[0], rtol=1e-12, atol=1e-12)

    perm = torch.randperm(n)
    logits_p, assoc_p = model(tokens[:, perm], lengths[:, perm])
    torch.testing.assert_close(logits_p, logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(assoc_p, assoc[:, :, perm], rtol=1e-12, atol=1e-12)


def test_deeprc_lookup_and_dense_embeddings_agree():
    torch.manual_seed(16)
    fast = make_deeprc("lookup", kernel_size=5, update_steps=2)
    slow = make_deeprc("dense", kernel_size=5, update_steps=2)
    slow.load_state_dict(fast.state_dict())
    tokens = torch.zeros(3, 6, 9, dtype=torch.uint8)
    lengths = torch.zeros(3, 6, dtype=torch.long)
    for b, count in enumerate((6, 2, 4)):
        tok, length = repertoire(count, 9, seed=20 + b)
        tokens[b, :count], lengths[b, :count] = tok, length
    logits_fast, assoc_fast = fast(tokens, lengths)
    logits_slow, assoc_slow = slow(tokens, lengths)
    torch.testing.assert_close(logits_fast, logits_slow, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(assoc_fast, assoc_slow, rtol=1e-12, atol=1e-12)
    # padding sequences embed to zeros on both paths
    for model in (fast, slow):
        embedded = model.embed(tokens, lengths)
        assert torch.all(embedded[lengths == 0] == 0)
        assert torch.isfinite(embedded).all()

    upstream = torch.randn(3, dtype=F64)
    grads_fast = torch.autograd.grad(logits_fast, list(fast.parameters()), upstream)
    grads_slow = torch.autograd.grad(logits_slow, list(slow.parameters()), upstream)
    names = [name for name, _ in fast.named_parameters()]
    for name, a, b in zip(names, grads_fast, grads_slow, strict=True):
        assert torch.isfinite(a).all(), name
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
