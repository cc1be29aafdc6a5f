"""``python -m causal_tune_ros.node.parameters [--yaml]``: print the parameter table (or the YAML file)."""

import sys

from causal_tune_ros.node.parameters.docs import main

sys.exit(main())
