"""Small ONNX graph utilities the export steps share."""

from __future__ import annotations

import onnx


def toposort(model: onnx.ModelProto) -> None:
    """Reorder ``model.graph.node`` topologically, in place (stable for already-sorted graphs).

    ONNX requires sorted nodes; some converters (onnxruntime's float16 pass inserting input casts) append
    nodes out of order.
    """
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        progress = False
        rest: list[onnx.NodeProto] = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
                progress = True
            else:
                rest.append(node)
        if not progress:
            missing = sorted({n for node in rest for n in node.input if n not in ready})
            raise ValueError(f"graph has a cycle or undefined inputs: {missing[:5]}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Node producing each tensor name."""
    return {out: node for node in model.graph.node for out in node.output}


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Nodes consuming each tensor name."""
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def ancestors(model: onnx.ModelProto, node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Every node whose output ``node`` depends on (not including ``node``)."""
    made_by = producers(model)
    seen: dict[str, onnx.NodeProto] = {}
    stack = [name for name in node.input]
    while stack:
        producer = made_by.get(stack.pop())
        if producer is None or producer.name in seen:
            continue
        seen[producer.name] = producer
        stack.extend(producer.input)
    return list(seen.values())
