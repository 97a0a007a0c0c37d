from hxtorch.spiking.transforms import weight_transforms  # noqa: F401
