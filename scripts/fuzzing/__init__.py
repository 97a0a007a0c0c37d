"""The fuzzer of ``scripts/fuzz.py`` (issue 15), one module per purpose; ``scripts/fuzz.py`` is its command line.

    constants    the repository, the console script, the kinds and outcomes, limits of one case
    mutations    the damaged input (Mutant) and format-blind damage: bytes, zip members, YAML as text
    structures   damage to parsed contents: nested dicts/lists (and which values are certainly invalid), arrays
    reference    the verdict of each format's own reader on a damaged file (run in a forked child)
    bases        the valid base files every mutation starts from (made once with the CLI, cached)
    formats      reading and writing each format, files of the wrong kind, the reference verdict as a Mutant
    model_files  mutations of model files (.pt) and BSS-2/Xylo deployments (.npz)
    yaml_files   mutations of recipes, target specs and calibrations (YAML)
    data_files   mutations of data files (.npz samples)
    nir_files    mutations of NIR graphs (HDF5)
    file_kinds   one damaged file of a kind (``mutate``)
    cases        the verbs that read each kind, bad arguments of every verb, the cases of a run
    runner       a case's sandbox, running it (forked or exec'd) with a timeout, classifying what happened
    report       the outcome table and the failures grouped
"""
