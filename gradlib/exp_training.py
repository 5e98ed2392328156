"""Chapter 7's experiments — does it matter in training? The init-time diagnoses of chapters 1–4, trained.

    vanishing_trained  a 20-layer tanh MLP, SGD: PyTorch's default init vs Xavier × 5/3 vs residual
    adam_caveat        the same default-init MLP under Adam: the update ratio no longer shows the vanishing
    warmup_runs        Post-LN, Post-LN + warm-up, Pre-LN at one Adam learning rate (Xiong et al. 2020)
    lr_sweep           the largest learning rate of a small grid at which each trains on every seed
    entropy_runs       attention-entropy collapse without warm-up, and QK-LayerNorm / σReparam (Zhai et al. 2023)
    clipping           clip_grad_norm_ tames an SGD loss spike, and never touches a vanishing gradient
    facts              the chapter's headline, re-measured for one seed, as checked sentences
    prefetch           every run above trained first in 2 processes (runs are seeded, deterministic, cached)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from torch import nn
from torch.nn.utils import skip_init

from gradlib import checks, draws
from gradlib.i18n import N_, _
from gradlib.mlp import DeepMLP
from gradlib.seq_model import SequenceModel
from gradlib.tasks import SequenceTask, TeacherTask
from gradlib.threads import single_threaded
from gradlib.training import History, RunCache, Runs, train

__all__ = ["SEEDS", "MLP_VARIANTS", "LN_VARIANTS", "ENTROPY_VARIANTS", "SWEEP_LRS", "UPDATE_RULE", "Runs", "LRSweep",
           "mlp_run", "ln_run", "entropy_run", "vanishing_trained", "adam_caveat", "warmup_runs", "lr_sweep",
           "entropy_runs", "clipping", "prefetch", "facts"]

SEEDS, UPDATE_RULE = (0, 1, 2), 1e-3  # the seeds of every conclusion; Karpathy's rule of thumb for ‖ΔW‖/‖W‖

# 1. the MLP of chapter 1, trained: a 10-way random-linear-teacher task, SGD
MLP_DEPTH, MLP_WIDTH, MLP_CLASSES, MLP_BATCH, MLP_STEPS = 20, 64, 10, 64, 150
MLP_LR, MLP_ADAM_LR = 0.1, 1e-3
MLP_VARIANTS = {"plain": (N_("plain, PyTorch's default init"), "baseline", dict(init="old")),  # label, role, kw
                "xavier": (N_("plain, Xavier × 5/3"), "series", dict(weight_scale=5.0 / 3.0)),
                "residual": (N_("residual, default init"), "residual", dict(init="old", residual=True))}
# 2. Post-LN vs Pre-LN: reverse 16 tokens of 16, three nn.TransformerEncoderLayer, Adam
LN_VOCAB, LN_LEN, LN_BATCH, LN_LAYERS, LN_D, LN_HEADS, LN_FF = 16, 16, 32, 3, 32, 4, 128
LN_STEPS, LN_WARMUP, LN_LR = 150, 60, 3e-2
LN_VARIANTS = {"post": ("Post-LN", "baseline", "post", 0),  # (label, role, norm position, warm-up steps)
               "post_warmup": (N_("Post-LN + warm-up"), "series", "post", LN_WARMUP),
               "pre": ("Pre-LN", "norm", "pre", 0)}
SWEEP_LRS = (5e-3, 3e-2, 4.5e-2)
# 3. attention entropy: sort 16 tokens, two gradlib Pre-LN blocks (final LayerNorm), Adam, no warm-up
ENT_LEN, ENT_D, ENT_LAYERS, ENT_STEPS, ENT_LR = 16, 32, 2, 80, 3e-2
ENTROPY_VARIANTS = {"plain": (N_("plain attention"), "baseline", dict()),  # (label, role, SequenceModel keywords)
                    "qk_norm": ("QK-LayerNorm", "norm", dict(qk_norm="layer")),
                    "sigma_reparam": ("σReparam", "series", dict(sigma_reparam=True))}
# 4. clipping: the residual MLP at a learning rate ten times too high; the vanishing MLP on its first 50 steps
CLIP_LR, CLIP_NORM, CLIP_CHECK_STEPS = 1.0, 1.0, 50
RECORD_EVERY = 20  # probes and entropy every 20 steps: recording then costs ≤ 1.2× a plain loop

# The thresholds of facts(); seeds 0–2 measured what the comments say (tests/test_exp_training.py).
TRAINED_BELOW = 0.3  # final loss (mean of the last 10 steps) that counts as trained: Pre-LN 0.000–0.005,
#   Post-LN + warm-up 0.016–0.12 at lr 3e-2; a failed run sits at chance, 2.45–2.78
CHANCE_WITHIN = 0.1  # |final − ln C|: default-init MLP 0.01–0.03 from ln 10; Post-LN 0.001–0.003 from ln 16
PLAIN_RATIO_BELOW = 1e-5  # default-init MLP, median first-layer ‖ΔW‖/‖W‖: 2.7e-7–4.3e-7
HEALTHY_RATIO_ABOVE = 1e-3  # Xavier × 5/3: 1.1e-2–1.2e-2; residual: 3.6e-2–3.8e-2
ADAM_RATIO_ABOVE = 1e-3  # the default-init MLP under Adam: 3.7e-3–4.0e-3
STALL_RATIO_BELOW = 0.01  # Post-LN, ‖∂ℓ/∂h_1‖/‖∂ℓ/∂h_L‖ at step 20: 0.0002–0.0006
KEPT_RATIO_ABOVE = 0.05  # the same with warm-up: 0.14–0.27; Pre-LN: 1.16–1.28
COLLAPSE_BELOW = 1.2  # plain attention's smallest head entropy: 0.54–0.84 nats (log T = 2.77)
BOUNDED_ABOVE = 1.8  # QK-LayerNorm: 2.14–2.18; σReparam: 2.26–2.57
SPIKE_ABOVE = 50.0  # largest loss of the unclipped SGD run at lr 1: 220–284 (clipped: 3.2–3.6)


@dataclass(frozen=True)
class LRSweep:
    """Which learning rates of a grid each configuration trains at: NaN where the search did not need a run."""

    keys: tuple[str, ...]  # (K,), with labels and roles as in Runs
    labels: tuple[str, ...]
    roles: tuple[str, ...]
    lrs: np.ndarray  # (G,) increasing
    seeds: tuple[int, ...]
    final: np.ndarray  # (K, G, S) final loss of every run made, NaN where none was
    largest: tuple[float, ...]  # (K,) the largest lr at which every seed trained (NaN: none)


_CACHE = RunCache()  # every run of this module, trained once per process


def _checked_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    return tuple(checks.seed(s, "seeds") for s in checks.sequence(seeds, "seeds"))


@_CACHE.cached
def _mlp_run(variant: str, seed: int, optimizer: str, lr: float, clip: Optional[float], steps: int) -> History:
    # DeepMLP(64, 20) then a linear read-out to 10 classes (nn.Linear's U[±1/√n], from the seed's own stream)
    head = skip_init(nn.Linear, MLP_WIDTH, MLP_CLASSES)
    draws.assign(head.weight, draws.uniform((MLP_CLASSES, MLP_WIDTH), MLP_WIDTH ** -0.5, draws.generator(seed + 7919)))
    draws.assign(head.bias, 0.0)
    model = nn.Sequential(DeepMLP(MLP_WIDTH, MLP_DEPTH, activation="tanh", seed=seed, **MLP_VARIANTS[variant][2]), head)
    task = TeacherTask(MLP_WIDTH, MLP_CLASSES, batch=MLP_BATCH, seed=seed)
    layers = [*model[0].layers, model[1]]  # the read-out is the last layer: its update ratio is the "last"
    return train(model, task, steps=steps, optimizer=optimizer, lr=lr, clip=clip, record_every=RECORD_EVERY * 5,
                 layers=layers, seed=seed)


@single_threaded
def mlp_run(variant: str = "plain", seed: int = 0, *, optimizer: str = "sgd", lr: float = MLP_LR,
            clip: Optional[float] = None, steps: int = MLP_STEPS) -> History:
    """One run of the chapter's MLP (MLP_VARIANTS) on the teacher task; layers: 20 hidden + the read-out."""
    clip = None if clip is None else checks.finite(clip, "clip", positive=True)
    return _mlp_run(checks.choice(variant, "variant", tuple(MLP_VARIANTS)), checks.seed(seed), optimizer,
                    checks.finite(lr, "lr", positive=True), clip, checks.positive_int(steps, "steps"))


@_CACHE.cached
def _ln_run(position: str, warmup: int, lr: float, seed: int, steps: int) -> History:
    model = SequenceModel(LN_VOCAB, LN_LEN, LN_D, LN_HEADS, LN_FF, LN_LAYERS, norm_position=position, seed=seed)
    task = SequenceTask("reverse", vocab=LN_VOCAB, seq_len=LN_LEN, batch=LN_BATCH)
    return train(model, task, steps=steps, optimizer="adam", lr=lr, warmup=warmup, record_every=RECORD_EVERY,
                 seed=seed)


@single_threaded
def ln_run(position: str = "post", warmup: int = 0, lr: float = LN_LR, seed: int = 0, *,
           steps: int = LN_STEPS) -> History:
    """One run of the reverse task on 3 PyTorch encoder layers, Post-LN or Pre-LN, Adam with optional warm-up."""
    return _ln_run(checks.choice(position, "position", ("pre", "post")), checks.integer(warmup, "warmup", minimum=0),
                   checks.finite(lr, "lr", positive=True), checks.seed(seed), checks.positive_int(steps, "steps"))


@_CACHE.cached
def _entropy_run(variant: str, seed: int, lr: float, steps: int) -> History:
    model = SequenceModel(LN_VOCAB, ENT_LEN, ENT_D, 4, 4 * ENT_D, ENT_LAYERS, norm_position="pre",
                          implementation="gradlib", final_norm=True, seed=seed, **ENTROPY_VARIANTS[variant][2])
    task = SequenceTask("sort", vocab=LN_VOCAB, seq_len=ENT_LEN, batch=LN_BATCH)
    return train(model, task, steps=steps, optimizer="adam", lr=lr, record_every=RECORD_EVERY, seed=seed)


@single_threaded
def entropy_run(variant: str = "plain", seed: int = 0, *, lr: float = ENT_LR, steps: int = ENT_STEPS) -> History:
    """One run of the sort task on two gradlib Pre-LN blocks, attention plain / QK-LayerNorm / σReparam."""
    return _entropy_run(checks.choice(variant, "variant", tuple(ENTROPY_VARIANTS)), checks.seed(seed),
                        checks.finite(lr, "lr", positive=True), checks.positive_int(steps, "steps"))


def _shown(table: dict) -> dict:
    """A table of this module (key -> (label, role, ...), labels N_-marked) with its labels in the current language."""
    return {k: (_(v[0]), *v[1:]) for k, v in table.items()}


def _runs(table: dict, keys: Sequence[str], seeds: tuple[int, ...], run, title: str) -> Runs:
    """Runs of `keys` over `seeds`; table: key -> (label, role, ...) with the labels as shown (translated)."""
    return Runs(tuple(keys), tuple(table[k][0] for k in keys), tuple(table[k][1] for k in keys), seeds,
                tuple(tuple(run(k, s) for s in seeds) for k in keys), title=title)


@single_threaded
def vanishing_trained(seeds: Sequence[int] = SEEDS) -> Runs:
    """The 20-layer tanh MLP trained with SGD (lr 0.1), default init vs Xavier × 5/3 vs residual."""
    return _runs(_shown(MLP_VARIANTS), list(MLP_VARIANTS), _checked_seeds(seeds), lambda k, s: mlp_run(k, s),
                 _("{depth}-layer tanh MLP, SGD lr {lr}").format(depth=MLP_DEPTH, lr=f"{MLP_LR:g}"))


@single_threaded
def adam_caveat(seeds: Sequence[int] = SEEDS) -> Runs:
    """The default-init MLP under SGD (lr 0.1) and under Adam (lr 1e-3): keys "sgd", "adam"."""
    table = {"sgd": (_("default init, SGD lr {lr}").format(lr=f"{MLP_LR:g}"), "baseline"),
             "adam": (_("default init, Adam lr {lr}").format(lr=f"{MLP_ADAM_LR:g}"), "series")}
    return _runs(table, ["sgd", "adam"], _checked_seeds(seeds),
                 lambda k, s: mlp_run("plain", s, optimizer=k, lr=MLP_LR if k == "sgd" else MLP_ADAM_LR),
                 _("the same vanishing MLP, two optimizers"))


@single_threaded
def warmup_runs(seeds: Sequence[int] = SEEDS, lr: float = LN_LR) -> Runs:
    """Post-LN, Post-LN + linear warm-up (60 steps), Pre-LN on the reverse task at one Adam lr."""
    return _runs(_shown(LN_VARIANTS), list(LN_VARIANTS), _checked_seeds(seeds),
                 lambda k, s: ln_run(LN_VARIANTS[k][2], LN_VARIANTS[k][3], lr, s),
                 _("{layers} encoder layers, reverse, Adam lr {lr}").format(layers=LN_LAYERS, lr=f"{lr:g}"))


def trained(h: History) -> bool:
    """A run learned its task: final loss below TRAINED_BELOW (a diverged run's is inf)."""
    return h.final_loss() < TRAINED_BELOW


@single_threaded
def lr_sweep(lrs: Sequence[float] = SWEEP_LRS, seeds: Sequence[int] = SEEDS) -> LRSweep:
    """The largest lr of the grid at which each LN_VARIANTS configuration trains on every seed.

    Walks the grid from the point nearest LN_LR: up while every seed trains, down while one does not (so it
    assumes that a larger rate is harder, as it is here; rates it needed not run are NaN in ``final``).
    """
    grid = checks.float_list(lrs, "lrs", positive=True)
    if any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"lrs must be increasing; got {lrs!r}")
    seeds = _checked_seeds(seeds)
    start = int(np.argmin([abs(math.log(lr / LN_LR)) for lr in grid]))
    final = np.full((len(LN_VARIANTS), len(grid), len(seeds)), np.nan)
    largest = []
    for k, (*_label_role, position, warmup) in enumerate(LN_VARIANTS.values()):  # not `_`: gettext's
        def ok(j: int) -> bool:
            hs = [ln_run(position, warmup, grid[j], s) for s in seeds]
            final[k, j] = [h.final_loss() for h in hs]
            return all(trained(h) for h in hs)

        j = start
        if ok(j):
            while j + 1 < len(grid) and ok(j + 1):
                j += 1
            largest.append(grid[j])
        else:
            while j > 0 and not ok(j - 1):
                j -= 1
            largest.append(grid[j - 1] if j > 0 else math.nan)
    return LRSweep(tuple(LN_VARIANTS), tuple(_(v[0]) for v in LN_VARIANTS.values()),
                   tuple(v[1] for v in LN_VARIANTS.values()), np.asarray(grid), seeds, final, tuple(largest))


@single_threaded
def entropy_runs(seeds: Sequence[int] = SEEDS) -> Runs:
    """Sort with two Pre-LN blocks at Adam lr 3e-2, no warm-up: plain attention, QK-LayerNorm, σReparam."""
    return _runs(_shown(ENTROPY_VARIANTS), list(ENTROPY_VARIANTS), _checked_seeds(seeds),
                 lambda k, s: entropy_run(k, s),
                 _("sort {n} tokens, Adam lr {lr}, no warm-up").format(n=ENT_LEN, lr=f"{ENT_LR:g}"))


@single_threaded
def clipping(seeds: Sequence[int] = SEEDS) -> Runs:
    """clip_grad_norm_(1) on the residual MLP at SGD lr 1 ("spike", "spike_clipped") and the vanishing one."""
    rate, norm = f"{CLIP_LR:g}", f"{CLIP_NORM:g}"
    table = {"spike": (_("residual, lr {lr}").format(lr=rate), "baseline"),
             "vanishing": (_("default init, lr 0.1"), "series"),
             "spike_clipped": (_("residual, lr {lr}, clipped at {clip}").format(lr=rate, clip=norm), "residual"),
             "vanishing_clipped": (_("default init, lr 0.1, clipped at {clip}").format(clip=norm), "reference")}

    def run(key: str, seed: int) -> History:
        clip = CLIP_NORM if key.endswith("clipped") else None
        if key.startswith("spike"):
            return mlp_run("residual", seed, lr=CLIP_LR, clip=clip)
        return mlp_run("plain", seed, clip=clip, steps=CLIP_CHECK_STEPS)

    keys = ["spike", "spike_clipped", "vanishing", "vanishing_clipped"]
    return _runs(table, keys, _checked_seeds(seeds), run, _("gradient clipping, SGD"))


@single_threaded
def prefetch(seeds: Sequence[int] = SEEDS, workers: int = 2) -> None:
    """Train every run the chapter's experiments need for `seeds` in `workers` processes (then all cached)."""
    seeds, ln_lr = _checked_seeds(seeds), SWEEP_LRS[int(np.argmin([abs(math.log(v / LN_LR)) for v in SWEEP_LRS]))]
    mlp = [(k, "sgd", MLP_LR, None, MLP_STEPS) for k in MLP_VARIANTS]
    mlp += [("plain", "adam", MLP_ADAM_LR, None, MLP_STEPS)]
    mlp += [("residual", "sgd", CLIP_LR, c, MLP_STEPS) for c in (None, CLIP_NORM)]
    mlp += [("plain", "sgd", MLP_LR, c, CLIP_CHECK_STEPS) for c in (None, CLIP_NORM)]
    ln = [(v[2], v[3]) for v in LN_VARIANTS.values()]
    jobs = [(__name__, "_ln_run", (p, w, ln_lr, s, LN_STEPS)) for p, w in ln for s in seeds]
    jobs += [(__name__, "_entropy_run", (k, s, ENT_LR, ENT_STEPS)) for k in ENTROPY_VARIANTS for s in seeds]
    jobs += [(__name__, "_mlp_run", (v, s, o, lr, c, n)) for v, o, lr, c, n in mlp for s in seeds]
    _CACHE.fill(jobs, workers)
    j, after = SWEEP_LRS.index(ln_lr), []  # the lr sweep's next step from the chapter's rate, every seed at once
    for p, w in ln:
        k = j + 1 if all(trained(ln_run(p, w, ln_lr, s)) for s in seeds) else j - 1
        if 0 <= k < len(SWEEP_LRS):
            after += [(__name__, "_ln_run", (p, w, SWEEP_LRS[k], s, LN_STEPS)) for s in seeds]
    _CACHE.fill(after, workers)


@single_threaded
def facts(seed: int) -> dict[str, bool]:
    """The chapter's headline re-measured for one seed at the chapter's settings: checked sentence -> holds."""
    seed = checks.seed(seed)
    mlp = {k: mlp_run(k, seed) for k in MLP_VARIANTS}
    end = {k: h.final_loss() for k, h in mlp.items()}
    first = {k: float(np.median(h.update_ratio_first)) for k, h in mlp.items()}
    adam = float(np.median(mlp_run("plain", seed, optimizer="adam", lr=MLP_ADAM_LR).update_ratio_first))
    ln = {k: ln_run(v[2], v[3], LN_LR, seed) for k, v in LN_VARIANTS.items()}
    early = {k: float(h.stream_grad_norms[1, 0] / h.stream_grad_norms[1, -1]) for k, h in ln.items()}  # step 20
    big = dict(zip(LN_VARIANTS, lr_sweep(seeds=(seed,)).largest))
    ent = {k: entropy_run(k, seed) for k in ENTROPY_VARIANTS}
    low = {k: float(np.nanmin(h.min_entropy)) for k, h in ent.items()}
    spike, tamed = mlp_run("residual", seed, lr=CLIP_LR), mlp_run("residual", seed, lr=CLIP_LR, clip=CLIP_NORM)
    short = [mlp_run("plain", seed, clip=c, steps=CLIP_CHECK_STEPS).loss for c in (None, CLIP_NORM)]
    checked = {
        f"default-init MLP stays at chance under SGD (within {CHANCE_WITHIN:g} of ln 10)":
            abs(end["plain"] - mlp["plain"].chance_loss) < CHANCE_WITHIN,
        f"... its first layer moves < {PLAIN_RATIO_BELOW:g} of itself per step": first["plain"] < PLAIN_RATIO_BELOW,
        f"Xavier x 5/3 and residual move it > {HEALTHY_RATIO_ABOVE:g} per step":
            min(first["xavier"], first["residual"]) > HEALTHY_RATIO_ABOVE,
        "residual MLP ends below Xavier x 5/3, below default init": end["residual"] < end["xavier"] < end["plain"],
        f"under Adam the same MLP's first layer moves > {ADAM_RATIO_ABOVE:g} per step": adam > ADAM_RATIO_ABOVE,
        f"Post-LN without warm-up stays at chance (within {CHANCE_WITHIN:g} of ln 16)":
            abs(ln["post"].final_loss() - ln["post"].chance_loss) < CHANCE_WITHIN,
        f"Post-LN with warm-up and Pre-LN train (final loss < {TRAINED_BELOW:g})":
            trained(ln["post_warmup"]) and trained(ln["pre"]),
        f"at step {RECORD_EVERY} Post-LN's layer-1 gradient is < {STALL_RATIO_BELOW:g} of layer L's":
            early["post"] < STALL_RATIO_BELOW,
        f"... with warm-up or Pre-LN > {KEPT_RATIO_ABOVE:g}": min(early["post_warmup"], early["pre"]) > KEPT_RATIO_ABOVE,
        "at init Post-LN's last layer gets a larger gradient than Pre-LN's":
            ln["post"].layer_grad_norms[0, -1] > ln["pre"].layer_grad_norms[0, -1],
        "largest lr that trains: Post-LN < Post-LN + warm-up <= Pre-LN": big["post"] < big["post_warmup"] <= big["pre"],
        f"plain attention's entropy collapses (min < {COLLAPSE_BELOW:g} nats)": low["plain"] < COLLAPSE_BELOW,
        f"QK-LayerNorm and sigmaReparam keep it up (min > {BOUNDED_ABOVE:g} nats)":
            min(low["qk_norm"], low["sigma_reparam"]) > BOUNDED_ABOVE,
        "QK-LayerNorm ends at a lower loss than plain attention":
            ent["qk_norm"].final_loss() < ent["plain"].final_loss(),
        f"SGD at lr {CLIP_LR:g} spikes (max loss > {SPIKE_ABOVE:g}); clipped, it stays < 10":
            np.nanmax(spike.loss) > SPIKE_ABOVE and np.nanmax(tamed.loss) < 10.0,
        "... and the clipped run ends lower": tamed.final_loss() < spike.final_loss(),
        "clipping leaves the vanishing MLP's run exactly as it was": np.array_equal(*short),
    }
    return {fact: bool(holds) for fact, holds in checked.items()}
