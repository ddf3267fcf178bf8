"""The station's default backbone, kept apart from the graph modules it names.

The model id hashes the code that defines the encoders' graphs (:data:`edge.model.spec.GRAPH_MODULES`).
Which backbone a station gets when its config names none is not graph: kept here, a change of default leaves
every model id, exported artifact and golden bank of every backbone valid.

Lite2 is the default since 2026-12-03: on the worst dev set it keeps 0.940 image AUROC where Lite0 falls
to 0.913 (README, "Backbone"). It costs about 20 ms per frame more on a 2-core CPU (README, "Latency":
there Lite0 stays the choice for a CPU-only station); stations run TensorRT on a GPU.
"""

from __future__ import annotations

from typing import Literal

#: Backbone of a station config that names none (``model.backbone``).
DEFAULT_BACKBONE: Literal["lite2"] = "lite2"
