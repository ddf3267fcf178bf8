"""The largest inputs the inspection feeds an encoder (config bounds, batching, TensorRT profiles).

A TensorRT engine accepts only shapes inside the optimisation profile it was built with, so every bound the
config schema lets a line engineer choose (``top_k``) and every batch the inspector forms (enrollment) must
be covered by the profile. The numbers live here, below the config, the inspector and the engine builder, so
none of them can widen without the others following.
"""

from __future__ import annotations

#: Largest ``top_k`` a SKU may configure (``skus[].top_k`` in the config schema): the comparison encoder's
#: ``k`` for the template comparison.
MAX_TOP_K = 32

#: Images the vision encoder sees at once when enrolling and calibrating golden images (the frame path
#: encodes one at a time).
ENROLL_BATCH = 8

#: Default patch-memory budget, in feature maps of the SKU's input size (``InspectorSettings.memory_chunks``):
#: the memory is packed into this many comparison-encoder "templates".
MEMORY_CHUNKS = 3


def comparison_k_max(memory_chunks: int = MEMORY_CHUNKS) -> int:
    """Largest ``k`` (templates) one comparison-encoder call receives.

    The template comparison and the patch-memory comparison are two separate calls of the same graph
    (``Inspector.analyze``): one with at most ``top_k`` retrieved templates, one with the packed memory
    (at most ``memory_chunks`` maps, since the memory budget is ``memory_chunks`` maps' worth of patches at
    the frame's own feature size). The larger of the two bounds ``k``.
    """
    return max(MAX_TOP_K, memory_chunks)
