"""The recipe of the default model, and the one definition of the training defaults.

``thermalcount train``'s options, their ranges and
:class:`~thermalcount.training.train.TrainOptions` read them here, so a model trained with
the defaults is trained as the shipped one was; :mod:`thermalcount.training.default` trains
the shipped model from it. A module of plain literals, apart from the training code, so
that ``train``'s options cost no numpy for ``--help`` and nothing imports in a circle.
"""

from __future__ import annotations

SEED = 2024
#: 16 clusters: with the lateral sort the person clusters spread over positions along the
#: travel axis AND over one/two people (docs/model.md, "What each change bought").
CLUSTERS = 16
LATENT = 5
EPOCHS = 50
#: The rest of train's defaults (the default model's own seed is SEED).
BATCH_SIZE = 512
VAL_SPLIT = 0.1
TRAIN_SEED = 0
TRAVEL_AXIS = "auto"
FRAME_RULES = True
#: What training accepts (--latent, --clusters): the design uses a latent of 3-5; k-means
#: needs 2 clusters at least, and the frame rules' states come on top of at most 16.
LATENT_RANGE = (2, 16)
CLUSTERS_RANGE = (2, 16)
#: The frame mean as background (the 48 coolest pixels with --background lowest); remove
#: each pixel's slow background (60 s), sort each line across the travel axis, smooth,
#: normalise contrast by the room temperature, then the noise floor 0.65 and the cap 2.5 in
#: 21 °C-room units (docs/model.md).
PREPROCESSING = dict(background="mean", lowest_pixels=48, lateral_sort="auto", blur=0.5, contrast_skin=33.0, clip_low=0.65, clip_high=2.5,
                     pattern_seconds=60.0, gain_first=True)
#: (scenario, frames, simulator keywords): rooms differ by seed (fixed pattern, ambient
#: jitter). Pairs (following, passing, busy) make up much of it so that k-means has enough
#: two-people frames to give them clusters of their own. The first entry must stay a 10 FPS
#: room at its own temperature: the accuracy suite's +5 °C check warms that room up.
RECIPE = (
    ("single", 4000, {}),
    ("busy", 8000, {}),
    ("following", 8000, {"reverse": True}),
    ("passing", 8000, {}),
    ("lingering", 3000, {"reverse": True}),
    ("turnback", 3000, {}),
    ("low_contrast", 3000, {}),
    ("warm_room", 4000, {}),
    ("drift", 3000, {}),
    ("single", 3000, {"ambient": 18.0}),
    ("single", 600, {"fps": 1.0}),
    ("following", 5000, {"ambient": 25.0}),
    ("passing", 5000, {"ambient": 19.0, "reverse": True}),
    ("warm_object", 3000, {}),
)


def source_names() -> list:
    """The names of the recipe's sources, as the model's training summary records them
    (without simulating the frames)."""
    names = []
    for index, (scenario, _frames, keywords) in enumerate(RECIPE):
        label = ",".join(f"{k}={v}" for k, v in sorted(keywords.items()))
        names.append(f"sim:{scenario}:seed={SEED + index}" + (f":{label}" if label else ""))
    return names


__all__ = ["SEED", "CLUSTERS", "LATENT", "EPOCHS", "BATCH_SIZE", "VAL_SPLIT", "TRAIN_SEED", "TRAVEL_AXIS", "FRAME_RULES",
           "LATENT_RANGE", "CLUSTERS_RANGE", "PREPROCESSING", "RECIPE",
           "source_names"]
