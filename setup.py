"""Package data from outside the package (the rest of the configuration is in pyproject.toml).

The top-level folders targets/, models/, csrc/ and calibration/ stay the source of truth (developers
edit them; an editable install reads them in place, see neurodeploy/shipped.py). A built wheel
carries copies of them as package data under neurodeploy/_shipped/FOLDER/: each folder is mapped
to a data-only package here. docs/packaging.md says why it is done this way.
"""

from setuptools import find_packages, setup

SHIPPED = {  # folder → the files of it that ship
    "targets": ["*.yaml"],
    "models": ["*.yaml", "programs/*.yaml"],
    "csrc": ["*.h", "*.cpp", "*.cu", "README.md"],
    "calibration": ["*.yaml", "*.md"],
}

setup(
    packages=find_packages(include=["neurodeploy", "neurodeploy.*"]) + [f"neurodeploy._shipped.{f}" for f in SHIPPED],
    package_dir={f"neurodeploy._shipped.{f}": f for f in SHIPPED},
    package_data={f"neurodeploy._shipped.{f}": globs for f, globs in SHIPPED.items()},
)
