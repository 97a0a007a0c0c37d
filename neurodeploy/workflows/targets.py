"""``targets``: the known targets and their limits, read from their spec files."""

from __future__ import annotations

from ..targets.spec import available_targets, load_target


def list_targets() -> list[dict]:
    rows = []
    for name in available_targets():
        spec = load_target(name)
        rows.append({"name": spec.name, "description": spec.description, "circuits": spec.total_circuits,
                     "synapse_rows": spec.total_rows, "synapses": spec.total_synapses,
                     "weight_bits": spec["synapse"]["weight_bits"], "speedup": spec.speedup,
                     "max_signed_fan_in": spec["synapse"]["signed_inputs_per_circuit"]
                     * spec["merging"]["max_circuits_per_neuron"],
                     "on_chip_delays": bool(spec["delays"]["on_chip"])})
    return rows
