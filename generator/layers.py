"""CktGen's building blocks: the GIN connectivity embedding (on PyTorch Geometric), sinusoidal positions, and
the decoder's pre-LayerNorm transformer blocks (attention with a key/value cache for step-wise decoding)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import DenseGraphConv

from circuits.circuit import MAX_NODES


class Gin(nn.Module):
    """One GIN-style layer on each node's rank one-hot x_v: PyG's ``DenseGraphConv`` with sum aggregation,
    W_root·x_v + W_rel·Σ_{u→v} a_uv·x_u + b (a node's slot and its predecessors' slots), then ReLU, dropout,
    a linear layer and dropout. It reads the padded (B, n, ·) arrays the transformer around it uses, every
    slot a node (padding slots have zero one-hots, so they send nothing)."""

    def __init__(self, hidden: int, out: int, dropout: float) -> None:
        super().__init__()
        # Drawn as the one linear layer on x_v ⊕ Σ x_u that the convolution computes (fan-in 2·MAX_NODES),
        # with DenseGraphConv's own draws discarded, so a model built from a seed starts as before the port.
        joint = nn.Linear(2 * MAX_NODES, hidden)
        with torch.random.fork_rng(devices=[]):
            self.conv = DenseGraphConv(MAX_NODES, hidden, aggr="add")
        with torch.no_grad():
            root, rel = joint.weight.split(MAX_NODES, dim=1)
            self.conv.lin_root.weight.copy_(root)
            self.conv.lin_rel.weight.copy_(rel)
            self.conv.lin_rel.bias.copy_(joint.bias)
        self.net = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out), nn.Dropout(dropout))
        self.register_load_state_dict_pre_hook(_split_old_gin_input)

    def forward(self, topo: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.net(self.conv(topo, adj.transpose(1, 2)))  # adj[u, v] is the edge u→v: v sums over u


def _split_old_gin_input(module: nn.Module, state: dict, prefix: str, *_: object) -> None:
    """Map a pre-port checkpoint's ``net.0`` (one linear layer on x_v ⊕ Σ x_u) onto ``conv.lin_root`` and
    ``conv.lin_rel``, and its ``net.3`` (after ReLU and dropout) onto ``net.2``, in place."""
    first = prefix + "net.0.weight"
    if first not in state:
        return
    weight = state.pop(first)
    state[prefix + "conv.lin_root.weight"], state[prefix + "conv.lin_rel.weight"] = weight.split(MAX_NODES, dim=1)
    state[prefix + "conv.lin_rel.bias"] = state.pop(prefix + "net.0.bias")
    for name in ("weight", "bias"):
        state[f"{prefix}net.2.{name}"] = state.pop(f"{prefix}net.3.{name}")


def sinusoidal(n: int, d: int) -> torch.Tensor:
    position = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : d // 2]
    return pe


class Attention(nn.Module):
    """Multi-head self-attention on ``scaled_dot_product_attention`` with a boolean block mask.

    With ``cache`` (a list, empty at first), keys and values of earlier calls are kept in it and
    the new tokens attend to them too: greedy decoding then feeds one step's tokens at a time.
    """

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        h = F.scaled_dot_product_attention(
            q, k, v, attn_mask=~blocked, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(h.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block (GPT style)."""

    def __init__(self, d: int, heads: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ratio * d), nn.GELU(), nn.Linear(ratio * d, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), blocked, cache))
        return x + self.mlp(self.ln2(x))


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))
