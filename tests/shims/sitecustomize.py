"""CPU tests only: serve `torchvision` (the stand-in in _torchvision/) to diffusers' scripts.

Imported at start-up by the processes of tests/test_bench_real.py (this folder is on their
PYTHONPATH). Only an `import torchvision` written in a train_dreambooth*.py file finds the
stand-in: transformers' own check for torchvision (importlib.util.find_spec) still finds none,
so it does not route its image utilities through the five transforms here.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent / "_torchvision"


def _importer_is_script() -> bool:
    f = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_filename
        if not (name.startswith("<frozen") or "importlib" in name or name == __file__):
            return Path(name).name.startswith("train_dreambooth")
        f = f.f_back
    return False


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision.transforms" and "torchvision" in sys.modules:
            return importlib.util.spec_from_file_location(name, _HERE / "transforms.py")
        if name == "torchvision" and _importer_is_script():
            return importlib.util.spec_from_file_location(
                name, _HERE / "__init__.py", submodule_search_locations=[str(_HERE)]
            )
        return None


sys.meta_path.insert(0, _Finder())
