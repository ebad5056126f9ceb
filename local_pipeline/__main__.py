import sys

from local_pipeline.demo import main

sys.exit(main())
