"""In-the-loop training: the chip runs the forward pass, the model supplies the gradients.

- :mod:`.inject`: the straight-through injection (forward = measured, backward = model) and the
  LIF/LI time loops that carry measured state.
- :mod:`.alignment`: how CADC samples map onto model potentials (offset, scale, time shift), measured.
- :mod:`.forward`: the network's forward pass with a backend's observations injected.
- :mod:`.loop`: the run's data and one epoch, as steps over objects.
- :mod:`.checkpoint`: the per-epoch checkpoint that ``--resume`` continues from.
- :mod:`.chips`, :mod:`.chips_run`: several chips in the loop at once (``--backend mock:0-3``), one set of
  weights, the gradients weighted by each chip's share of the batch; over processes with ``--nproc``.

The target supplies the deployment and the fixed-scale weight handling (``Target.itl_session``;
BSS-2's is ``neurodeploy.targets.bss2.itl_layout``). The verb that ties them together, with the
fingerprint, checkpoints and output, is :mod:`neurodeploy.workflows.itl`. Calling this package is
:func:`neurodeploy.api.itl` (``nd.itl(...)``; see ``_callable_package``).
"""

from .._callable_package import make_callable

make_callable(__name__, "itl")
