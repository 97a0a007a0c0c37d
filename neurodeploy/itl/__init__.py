"""In-the-loop training: the chip runs the forward pass, the model supplies the gradients.

- :mod:`.inject`: the straight-through injection (forward = measured, backward = model) and the
  LIF/LI time loops that carry measured state.
- :mod:`.alignment`: how CADC samples map onto model potentials (offset, scale, time shift), measured.
- :mod:`.forward`: the network's forward pass with a backend's observations injected.
- :mod:`.reconfigure`: fixed-scale quantisation and the deployment after a weight update.
- :mod:`.checkpoint`: the per-epoch checkpoint that ``--resume`` continues from.

The workflow that ties them to a backend is :mod:`neurodeploy.workflows.itl`.
"""
