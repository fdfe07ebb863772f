"""What the interop checks share: the error measure and reading vtb's resolved config."""
import subprocess

import numpy as np


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def vtb_config(vtb, ini, *overrides):
    """{section: {key: value}} as `vtb config` resolves `ini` (values without the notes on where they came from)."""
    r = subprocess.run([vtb, "config", "--config", ini, *overrides], capture_output=True, text=True, check=True)
    config, section = {}, None
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = config.setdefault(line.strip("[]"), {})
        elif section is not None and "=" in line:
            k, v = line.split("=", 1)
            section[k.strip()] = v.split("#")[0].strip()
    return config
