"""mgc: music genre classification on pretrained audio embeddings.

The library behind the DVC pipeline in this repository. It knows nothing of DVC: every
function takes typed arguments, so it can be used from a notebook or another pipeline.
"""

__version__ = "0.1.0"
