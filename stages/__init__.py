"""DVC's face: one thin module per stage of dvc.yaml (`python -m stages.<name> ...`).

Each parses its arguments, loads params.yaml through `mgc.pipeline.params`, calls one
function of `mgc.pipeline` (which writes the stage's outputs atomically) and prints what it
did. No modelling logic lives here.
"""
