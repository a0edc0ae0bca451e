"""PyTorch implementation of DESIGN.md's "Model specification", for the loom-vs-PyTorch
benchmark (issue 8). Written from the specification, not from loom's code; the parameter
names are loom's state_dict names, so a loom checkpoint's /model/<name> datasets load as is.

Covered: arch "seq2seq", pre-LN, tied embeddings, multi-head attention (kv_heads = heads),
relu or gelu (erf form), sinusoidal or no positions, label-smoothed cross-entropy. Anything
else in a config is refused with an error naming the key (the benchmark's recipes use none
of it). check_golden.py validates this file against specs/model_golden.h5.

    x = embed(ids) * sqrt(d) + PE[:T]; dropout
    encoder layer: x = x + drop(attn(ln(x), pad mask)); x = x + drop(ffn(ln(x)))
    decoder layer: self-attn (causal + target pad keys), cross-attn (source pad keys), ffn
    stacks end with a LayerNorm (encoder.norm, decoder.norm); logits = h @ embed.weight^T
    ffn(x) = fc2(drop(act(fc1(x)))); attention: softmax(q k^T / sqrt(hd) + mask), drop, @ v
"""
import math
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD = 0


# DESIGN.md's [model] defaults, for keys a config leaves out.
DEFAULTS = {"arch": "seq2seq", "vocab": 8000, "d_model": 256, "heads": 4, "ffn": 1024,
            "encoder_layers": 3, "decoder_layers": 3, "activation": "relu", "norm": "pre",
            "tie_embeddings": True, "dropout": 0.1, "label_smoothing": 0.1,
            "position": "sinusoidal", "max_len": 256}


def config_from_toml(text):
    """The [model] table of TOML text, DESIGN.md's defaults filled in."""
    cfg = dict(DEFAULTS)
    cfg.update(tomllib.loads(text)["model"])
    cfg.setdefault("kv_heads", cfg["heads"])
    return cfg


def check_supported(cfg):
    """Raises ValueError naming the first [model] key this implementation does not cover."""
    wanted = {"arch": "seq2seq", "norm": "pre", "tie_embeddings": True}
    for key, value in wanted.items():
        if cfg[key] != value:
            raise ValueError(f"model.{key} = {cfg[key]!r}: compare_torch/model.py implements "
                             f"only {key} = {value!r}")
    if cfg["position"] not in ("sinusoidal", "none"):
        raise ValueError(f"model.position = {cfg['position']!r}: only sinusoidal and none")
    if cfg["activation"] not in ("relu", "gelu"):
        raise ValueError(f"model.activation = {cfg['activation']!r}: only relu and gelu")
    if cfg["kv_heads"] != cfg["heads"]:
        raise ValueError(f"model.kv_heads = {cfg['kv_heads']}: only multi-head attention "
                         f"(kv_heads = heads = {cfg['heads']})")


def sinusoidal_table(n, d):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same); (n, d), computed in
    float64 and rounded once."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d, 2, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, two_i / d)
    table = torch.empty(n, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table.float()


class Attention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.o_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x, memory, bias):
        """x: (B, T, C), memory: (B, S, C), bias: additive mask broadcastable to (B, H, T, S)
        with 0 where attending and -inf elsewhere."""
        B, T, C = x.shape
        S = memory.shape[1]
        H, D = self.heads, self.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)        # (B, H, T, D)
        k = self.k_proj(memory).view(B, S, H, D).transpose(1, 2)   # (B, H, S, D)
        v = self.v_proj(memory).view(B, S, H, D).transpose(1, 2)   # (B, H, S, D)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D)) + bias
        p = F.dropout(torch.softmax(scores, dim=-1), self.dropout, self.training)
        y = torch.matmul(p, v).transpose(1, 2).reshape(B, T, C)    # (B, T, C)
        return self.o_proj(y)


class FeedForward(nn.Module):
    def __init__(self, d, hidden, activation, dropout):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)
        self.act = F.gelu if activation == "gelu" else F.relu  # F.gelu default: exact erf
        self.dropout = dropout

    def forward(self, x):
        return self.fc2(F.dropout(self.act(self.fc1(x)), self.dropout, self.training))


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, p = cfg["d_model"], cfg["dropout"]
        self.self_attn = Attention(d, cfg["heads"], p)
        self.self_attn_norm = nn.LayerNorm(d, eps=1e-5)
        self.ffn = FeedForward(d, cfg["ffn"], cfg["activation"], p)
        self.ffn_norm = nn.LayerNorm(d, eps=1e-5)
        self.dropout = p

    def forward(self, x, src_bias):
        z = self.self_attn_norm(x)
        x = x + F.dropout(self.self_attn(z, z, src_bias), self.dropout, self.training)
        return x + F.dropout(self.ffn(self.ffn_norm(x)), self.dropout, self.training)


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, p = cfg["d_model"], cfg["dropout"]
        self.self_attn = Attention(d, cfg["heads"], p)
        self.self_attn_norm = nn.LayerNorm(d, eps=1e-5)
        self.cross_attn = Attention(d, cfg["heads"], p)
        self.cross_attn_norm = nn.LayerNorm(d, eps=1e-5)
        self.ffn = FeedForward(d, cfg["ffn"], cfg["activation"], p)
        self.ffn_norm = nn.LayerNorm(d, eps=1e-5)
        self.dropout = p

    def forward(self, y, memory, self_bias, src_bias):
        z = self.self_attn_norm(y)
        y = y + F.dropout(self.self_attn(z, z, self_bias), self.dropout, self.training)
        z = self.cross_attn_norm(y)
        y = y + F.dropout(self.cross_attn(z, memory, src_bias), self.dropout, self.training)
        return y + F.dropout(self.ffn(self.ffn_norm(y)), self.dropout, self.training)


class Stack(nn.Module):
    def __init__(self, layer, n, d):
        super().__init__()
        self.layers = nn.ModuleList(layer() for _ in range(n))
        self.norm = nn.LayerNorm(d, eps=1e-5)


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        check_supported(cfg)
        self.cfg = cfg
        d = cfg["d_model"]
        self.embed = nn.Embedding(cfg["vocab"], d)
        self.encoder = Stack(lambda: EncoderLayer(cfg), cfg["encoder_layers"], d)
        self.decoder = Stack(lambda: DecoderLayer(cfg), cfg["decoder_layers"], d)
        self.dropout = cfg["dropout"]
        positions = cfg["position"] == "sinusoidal"
        table = sinusoidal_table(cfg["max_len"], d) if positions else None
        self.register_buffer("positions", table, persistent=False)

    def embed_tokens(self, ids):
        x = self.embed(ids) * math.sqrt(self.cfg["d_model"])  # (B, T, C)
        if self.positions is not None:
            T = ids.shape[1]
            if T > self.positions.shape[0]:
                self.positions = sinusoidal_table(T, self.cfg["d_model"]).to(x.dtype)
            x = x + self.positions[:T].to(x.dtype)
        return F.dropout(x, self.dropout, self.training)

    def forward(self, src, tgt_in):
        """src: (B, S), tgt_in: (B, T) int64 ids, pad 0 -> logits (B, T, V)."""
        dtype = self.embed.weight.dtype
        T = tgt_in.shape[1]
        neg_inf = torch.tensor(float("-inf"), dtype=dtype)
        zero = torch.tensor(0.0, dtype=dtype)
        src_bias = torch.where(src != PAD, zero, neg_inf)[:, None, None, :]     # (B, 1, 1, S)
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()  # (T, T)
        keep = causal[None, None] & (tgt_in != PAD)[:, None, None, :]            # (B, 1, T, T)
        self_bias = torch.where(keep, zero, neg_inf)

        h = self.embed_tokens(src)
        for layer in self.encoder.layers:
            h = layer(h, src_bias)
        memory = self.encoder.norm(h)
        y = self.embed_tokens(tgt_in)
        for layer in self.decoder.layers:
            y = layer(y, memory, self_bias, src_bias)
        return F.linear(self.decoder.norm(y), self.embed.weight)


def sequence_loss(logits, tgt_out, label_smoothing):
    """(1-eps) nll + eps mean_v(-log p), pad targets ignored, mean over non-pad tokens."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=label_smoothing)


def is_embedding(name):
    return name.endswith("embed.weight") or name == "output.weight"


def adamw_groups(model, weight_decay, decay_embeddings=False):
    """loom's optim::decay_groups: weight decay on matrices (embeddings only when asked),
    none on biases and LayerNorm parameters."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        wants = p.dim() >= 2 and (decay_embeddings or not is_embedding(name))
        (decay if wants else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def load_loom_weights(model, h5_group):
    """Copies every /model/<name> dataset of a loom checkpoint (an h5py group) into the
    model; strict: missing, unexpected and wrong-shape names are errors."""
    state = {name: torch.from_numpy(h5_group[name][()]) for name in h5_group.keys()}
    model.load_state_dict(state, strict=True)
