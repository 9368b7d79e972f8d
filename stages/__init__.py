"""DVC's face: one thin module per stage of dvc.yaml (`python -m stages.<name> ...`).

Each reads params.yaml (through `stages.params`) and its input paths, calls the `mgc`
library, and writes its outputs atomically. No modelling logic lives here.
"""
