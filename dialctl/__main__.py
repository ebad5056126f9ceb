import sys

from dialctl.cli import main

sys.exit(main())
