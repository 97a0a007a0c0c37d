"""Fake ``hxtorch.spiking`` (tests only; tests/fake_hxtorch/README.md): what neurodeploy's hxtorch backend uses."""

from hxtorch.spiking import functional, morphology, transforms  # noqa: F401
from hxtorch.spiking.experiment import ExecutionInstance, Experiment, run  # noqa: F401
from hxtorch.spiking.handle import LIFObservables, LIObservables, SynapseHandle  # noqa: F401
from hxtorch.spiking.modules import LI, LIF, InputNeuron, Synapse  # noqa: F401
from hxtorch.spiking.parameter import (HXParameter, HXTransformedModelParameter,  # noqa: F401
                                       MixedHXModelParameter)
