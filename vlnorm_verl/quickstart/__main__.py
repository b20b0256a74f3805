"""``python -m vlnorm_verl.quickstart``: see :mod:`vlnorm_verl.quickstart.cli`."""

import sys

from vlnorm_verl.quickstart.cli import main

sys.exit(main())
