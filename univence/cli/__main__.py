import sys

from univence.cli import main

sys.exit(main())
