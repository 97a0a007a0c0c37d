"""``import neurodeploy.pynn as sim``: a PyNN simulator whose execution is neurodeploy's emulated BrainScaleS-2.

>>> import neurodeploy.pynn as sim
>>> sim.setup(timestep=0.001, backend="mock:0", calibration="cal.yaml")      # doctest: +SKIP
>>> neurons = sim.Population(10, sim.cells.HXNeuron(threshold_v_threshold=450))  # doctest: +SKIP

Cell types as pynn_brainscales names them (:mod:`.cells`: ``HXNeuron``, ``CalibHXNeuronCuba``), PyNN's
``IF_curr_exp`` and ``SpikeSourceArray``; ``Population``, ``Projection`` with static synapses and PyNN's
connectors; ``record("spikes" | "v")``, ``run``, ``get_data`` (Neo blocks), ``reset``, ``end``. Every ``run()``
maps the network with the BSS-2 target's mapper and design rules and runs it on the chosen backend
(:mod:`.network` says how, and what it refuses). Times are chip time in ms unless
``setup(time_scale="biological")``.
"""

from pyNN import errors, random, space  # noqa: F401
from pyNN.connectors import (AllToAllConnector, ArrayConnector, CloneConnector, CSAConnector,  # noqa: F401
                             DistanceDependentProbabilityConnector, DisplacementDependentProbabilityConnector,
                             FixedNumberPostConnector, FixedNumberPreConnector, FixedProbabilityConnector,
                             FixedTotalNumberConnector, FromFileConnector, FromListConnector,
                             IndexBasedProbabilityConnector, OneToOneConnector, SmallWorldConnector)
from pyNN.parameters import Sequence  # noqa: F401
from pyNN.random import NumpyRNG, RandomDistribution  # noqa: F401
from pyNN.space import Space  # noqa: F401
from pyNN.standardmodels import StandardCellType

from . import cells  # noqa: F401
from .cells import *  # noqa: F401,F403
from .cells import (CalibHXNeuronCuba, HXNeuron, IF_curr_exp, SpikeSourceArray)  # noqa: F401
from .control import (end, get_current_time, get_max_delay, get_min_delay, get_time_step, initialize,  # noqa: F401
                      mapping_report, num_processes, rank, reset, run, run_for, run_until, setup)
from .populations import Assembly, Population, PopulationView  # noqa: F401
from .procedural_api import connect, create, record  # noqa: F401
from .projections import Projection  # noqa: F401
from .synapses import *  # noqa: F401,F403
from .synapses import StaticSynapse  # noqa: F401
from . import synapses as _synapses


class standardmodels:  # noqa: N801 (pynn_brainscales' module path: sim.standardmodels.synapses.StaticSynapse)
    cells = cells
    synapses = _synapses


def list_standard_models() -> list[str]:
    """The cell types this simulator offers (the refused ones included: run() names why)."""
    return [obj.__name__ for obj in vars(cells).values()
            if isinstance(obj, type) and issubclass(obj, StandardCellType) and obj is not StandardCellType]
