"""``python -m cnnlens.export NOTEBOOK.ipynb OUT.html [--execute]``: see :mod:`.notebook`."""
import sys

from .notebook import main

sys.exit(main())
