"""product_descgen: distil a large teacher LLM's product descriptions into a small student."""

import logging
import os

# OpenMP threads wait passively for work (before torch loads OpenMP, which reads this once): a
# thread spinning on a core that another process needs slows every step (product_descgen.runtime).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# bitsandbytes warns at import that its optional CPU kernel is missing: the `kernels` package
# would download it from the Hugging Face hub, which this project never reaches at run time.
# bitsandbytes' own CPU code serves instead (training and the nf4 reference path), so the advice
# is noise here.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
